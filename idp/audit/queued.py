"""Audit records off the request path: a bounded in-process queue that a writer thread
delivers to the real sink in batches.

``write`` appends the record — already complete: ``eventTime``, ``eventID``, ``requestID``
were set by :meth:`~idp.audit.Auditor.emit` — and returns.  The writer thread wakes every
``interval`` seconds, or as soon as a batch is full, and hands what is queued to the sink in
batches (one write and one flush per batch: ``write_many``).  The guarantee:

- a clean stop loses nothing: :meth:`QueuedSink.close` (app teardown) and the end of the
  process (the interpreter's thread shutdown, which runs in gunicorn and granian workers
  alike, before ``atexit``) drain the queue, then close the sink;
- when the queue is full, ``write`` waits for room (backpressure): a record is never dropped
  to keep a request fast;
- a crash (SIGKILL, out of memory) loses at most what was queued and not yet written: at
  most ``capacity`` records, and no record older than about one ``interval``;
- a write that fails (disk full, folder unwritable) is logged, counted in :attr:`failures`,
  shown by :attr:`error` (the readiness probe answers 503 while it is set) and retried with
  the same records until it succeeds: records wait in the queue, never skipped.

Safe across ``fork``: a child starts with an empty queue and its own writer (what the
parent had queued is the parent's to write).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from idp.audit import AuditSink

log = logging.getLogger("idp.audit")

MAX_RETRY_DELAY = 5.0
# a stopping writer gives up on a sink that keeps failing after this many seconds
STOP_RETRY_SECONDS = 10.0


def write_many(sink: AuditSink, records: Sequence[Mapping[str, Any]]) -> None:
    """Hand ``records`` to ``sink`` in one call when it can take a batch."""
    batch = getattr(sink, "write_many", None)
    if batch is not None:
        batch(records)
        return
    for record in records:
        sink.write(record)


class QueuedSink:
    """An :class:`~idp.audit.AuditSink` delivering to ``inner`` from a writer thread."""

    def __init__(self, inner: AuditSink, *, interval: float = 0.1, capacity: int = 10000,
                 batch: int = 1024) -> None:
        self.inner = inner
        self.interval = interval
        self.capacity = capacity
        self.batch = max(1, min(batch, capacity))
        self.failures = 0
        self.error: str | None = None
        self._closed = False
        self._reset()
        ref = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())

    def _reset(self) -> None:
        """Fresh state for this process (at start, and in a child after ``fork``)."""
        self._cond = threading.Condition()
        self._items: deque[Mapping[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = self._stopped = self._closed  # closed before the fork: stays closed

    # -- the request side -------------------------------------------------------------------

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue ``record``; wait while the queue is full.  Once the writer has stopped (after
        :meth:`close`, or while the process ends) the record is written here, synchronously."""
        with self._cond:
            if not self._stopped:
                if self._thread is None:
                    self._start()
                while len(self._items) >= self.capacity and not self._stopped:
                    self._cond.wait()
                if not self._stopped:
                    self._items.append(record)
                    if len(self._items) >= self.batch:
                        self._cond.notify_all()
                    return
        self.inner.write(record)

    def _start(self) -> None:
        # not a daemon: the interpreter's shutdown waits for it, and it drains before it ends
        self._thread = threading.Thread(target=self._run, name="idp-audit-writer")
        self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued so far is written (``False`` on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._items and not self._stopped:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return not self._items

    def pending(self) -> int:
        """Records queued and not yet written."""
        return len(self._items)

    # -- the writer -------------------------------------------------------------------------

    def _run(self) -> None:
        main = threading.main_thread()
        ending = False
        while True:
            with self._cond:
                if len(self._items) < self.batch and not self._stopping:
                    self._cond.wait(self.interval)
                if not main.is_alive() and not self._closed:
                    # the process is ending (the interpreter's shutdown, in a gunicorn or
                    # granian worker too): drain, then close the sink (a trail's final digest)
                    self._stopping = self._closed = ending = True
                if not self._items and self._stopping:
                    self._stopped = True
                    self._cond.notify_all()
                    break
                take = list(islice(self._items, self.batch))
            if not take:
                continue
            self._deliver(take)
            with self._cond:
                for _ in take:
                    self._items.popleft()
                self._cond.notify_all()
        if ending:
            self.inner.close()

    def _deliver(self, records: list[Mapping[str, Any]]) -> None:
        """Write one batch; on failure log it, keep the records and try again."""
        delay = self.interval
        gave_up_at: float | None = None
        while True:
            try:
                write_many(self.inner, records)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the records
                records = records[getattr(exc, "written", 0):]  # a batch written in part
                self.failures += 1
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("audit: writing %d record(s) failed, retrying: %s", len(records),
                          self.error)
                if self._stopping:
                    gave_up_at = gave_up_at or time.monotonic() + STOP_RETRY_SECONDS
                    if time.monotonic() >= gave_up_at:
                        log.critical("audit: %d record(s) lost: the sink keeps failing while "
                                     "the process stops (%s)", len(records), self.error)
                        return
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            if self.error is not None:
                log.warning("audit: writing records again after %s", self.error)
                self.error = None
            return

    # -- stopping ---------------------------------------------------------------------------

    def close(self) -> None:
        """Drain the queue, stop the writer, close ``inner``."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.inner.close()


def delivery_error(sink: Any) -> str | None:
    """The error of the queued writer under ``sink`` (through wrapping sinks' ``inner``) while
    its writes fail; ``None`` when they succeed or there is no queue."""
    for _ in range(8):
        if isinstance(sink, QueuedSink):
            return sink.error
        sink = getattr(sink, "inner", None)
        if sink is None:
            break
    return None
