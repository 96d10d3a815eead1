"""The ``memory://`` store: one process, thread-safe, the embedded default (DESIGN.md §Real
components).

Every key carries a deadline on an injectable monotonic ``clock``.  Expired keys are dropped
lazily when touched and by a bounded sweep that runs with every operation: a min-heap of
deadlines is popped for at most ``sweep_batch`` expired entries, so memory does not grow with
keys nobody reads again and no single call pays for the whole table.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Sequence

from idp.store import Write, check_swap, check_ttl

DEFAULT_SWEEP_BATCH = 128


class MemoryStore:
    """A :class:`idp.store.Store` in a dict guarded by one lock."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        sweep_batch: int = DEFAULT_SWEEP_BATCH,
    ) -> None:
        if sweep_batch < 1:
            raise ValueError("sweep_batch must be >= 1")
        self._clock = clock
        self._sweep_batch = sweep_batch
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bytes, float]] = {}
        # (deadline, key); entries go stale when a key is rewritten or deleted and are
        # discarded when popped, or all at once when the heap outgrows the table.
        self._deadlines: list[tuple[float, str]] = []

    # -- internals (call with the lock held) -------------------------------------------------

    def _now(self) -> float:
        now = self._clock()
        self._sweep(now, self._sweep_batch)
        return now

    def _sweep(self, now: float, limit: int | None) -> int:
        removed = 0
        heap = self._deadlines
        while heap and heap[0][0] <= now and (limit is None or removed < limit):
            deadline, k = heapq.heappop(heap)
            entry = self._data.get(k)
            if entry is not None and entry[1] == deadline:
                del self._data[k]
            removed += 1
        if len(heap) > 2 * len(self._data) + 1024:
            self._deadlines = [(d, k) for k, (_, d) in self._data.items()]
            heapq.heapify(self._deadlines)
        return removed

    def _live(self, k: str, now: float) -> tuple[bytes, float] | None:
        entry = self._data.get(k)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[k]
            return None
        return entry

    def _put(self, k: str, value: bytes, deadline: float) -> None:
        self._data[k] = (value, deadline)
        heapq.heappush(self._deadlines, (deadline, k))

    # -- the Store protocol ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value, or ``None`` when missing or expired."""
        with self._lock:
            entry = self._live(key, self._now())
            return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Write ``value`` with a TTL (Redis ``SET EX``)."""
        check_ttl(ttl)
        with self._lock:
            self._put(key, bytes(value), self._now() + ttl)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Write only if absent (Redis ``SET NX EX``); ``True`` if written."""
        check_ttl(ttl)
        with self._lock:
            now = self._now()
            if self._live(key, now) is not None:
                return False
            self._put(key, bytes(value), now + ttl)
            return True

    def take(self, key: str) -> bytes | None:
        """Read and delete atomically (Redis ``GETDEL``)."""
        with self._lock:
            entry = self._live(key, self._now())
            if entry is None:
                return None
            del self._data[key]
            return entry[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` (``None`` where missing), under one lock."""
        with self._lock:
            now = self._now()
            return [None if (e := self._live(k, now)) is None else e[0] for k in keys]

    def set_many(self, writes: Sequence[Write]) -> None:
        """Write each ``(key, value, ttl)``, under one lock."""
        for _, _, ttl in writes:
            check_ttl(ttl)
        with self._lock:
            now = self._now()
            for k, value, ttl in writes:
                self._put(k, bytes(value), now + ttl)

    def add_then_get(self, key: str, value: bytes, ttl: int,
                     read: str) -> tuple[bool, bytes | None]:
        """:meth:`add`, then :meth:`get` of ``read``, under one lock."""
        added, (raw,) = self.add_then_get_many(key, value, ttl, [read])
        return added, raw

    def add_then_get_many(self, key: str, value: bytes, ttl: int,
                          reads: Sequence[str]) -> tuple[bool, list[bytes | None]]:
        """:meth:`add`, then the values of ``reads``, under one lock."""
        check_ttl(ttl)
        with self._lock:
            now = self._now()
            added = self._live(key, now) is None
            if added:
                self._put(key, bytes(value), now + ttl)
            return added, [None if (e := self._live(k, now)) is None else e[0] for k in reads]

    def swap(self, key: str, expected: bytes, writes: Sequence[Write]) -> bool:
        """Spend ``key`` if it holds ``expected`` and write ``writes``, under one lock."""
        check_swap(key, writes)
        with self._lock:
            now = self._now()
            entry = self._live(key, now)
            if entry is None or entry[0] != expected:
                return False
            del self._data[key]
            for k, value, ttl in writes:
                self._put(k, bytes(value), now + ttl)
            return True

    def delete(self, key: str) -> bool:
        """Delete; ``True`` if the key existed."""
        with self._lock:
            if self._live(key, self._now()) is None:
                return False
            del self._data[key]
            return True

    def incr(self, key: str, ttl: int) -> int:
        """Increment a counter; the TTL is set only when it is created (a fixed window)."""
        check_ttl(ttl)
        with self._lock:
            now = self._now()
            entry = self._live(key, now)
            if entry is None:
                self._put(key, b"1", now + ttl)
                return 1
            try:
                count = int(entry[0]) + 1
            except ValueError:
                raise ValueError(f"value of `{key}` is not an integer") from None
            self._data[key] = (str(count).encode(), entry[1])
            return count

    def expire(self, key: str, ttl: int) -> bool:
        """Set a new TTL on an existing key; ``False`` if it does not exist."""
        check_ttl(ttl)
        with self._lock:
            now = self._now()
            entry = self._live(key, now)
            if entry is None:
                return False
            self._put(key, entry[0], now + ttl)
            return True

    def ttl(self, key: str) -> int | None:
        """Whole seconds left (rounded up), or ``None`` when the key does not exist."""
        with self._lock:
            now = self._now()
            entry = self._live(key, now)
            return None if entry is None else math.ceil(entry[1] - now)

    def ping(self) -> None:
        """Always answers: the store lives in this process."""

    def durability_warnings(self) -> list[str]:
        """The memory store forgets everything when its process stops."""
        return ["memory store: sessions, tokens and replay markers are lost when this process "
                "stops"]

    def close(self) -> None:
        """Drop every key."""
        with self._lock:
            self._data.clear()
            self._deadlines.clear()

    # -- extras for operators and tests ------------------------------------------------------

    def sweep(self) -> int:
        """Drop every expired key now; the number of heap entries examined."""
        with self._lock:
            return self._sweep(self._clock(), None)

    def __len__(self) -> int:
        """Keys held, including expired ones not swept yet."""
        with self._lock:
            return len(self._data)
