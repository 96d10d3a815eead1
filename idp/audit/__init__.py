"""Audit events: CloudTrail-like JSON records of every security-relevant event.

One :class:`Auditor` is shared by every feature; it writes to one :class:`AuditSink`
(file of JSON lines by default).  Field names follow AWS CloudTrail's record contents
(``eventTime``, ``eventName``, ``userIdentity``, ``sourceIPAddress``, ``userAgent``,
``errorCode``, ``requestID``…).  Secrets never appear: keys that look like secrets are
redacted before a record is written.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from idp import ids

EVENT_VERSION = "1.08"
EVENT_SOURCE = "idp"
_SECRET_WORDS = ("password", "secret", "token", "assertion", "samlresponse", "code_verifier",
                 "private", "credential", "cookie")
REDACTED = "[redacted]"


class AuditSink(Protocol):
    """Where records go."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def json_line(record: Mapping[str, Any]) -> str:
    """A record as one line of JSON (sorted keys, no spaces)."""
    return _ENCODER.encode(record) + "\n"


class FileSink:
    """Append JSON lines to a file (created 0600): one write and flush per record, or per
    batch (``write_many``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        try:
            path.chmod(0o600)
        except OSError:
            pass

    def write(self, record: Mapping[str, Any]) -> None:
        self.write_many((record,))

    def write_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        data = "".join(map(json_line, records))
        with self._lock:
            self._fh.write(data)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class StreamSink:
    """JSON lines to a stream (stdout by default)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        self.write_many((record,))

    def write_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        data = "".join(map(json_line, records))
        with self._lock:
            self._stream.write(data)
            self._stream.flush()

    def close(self) -> None:
        pass


class MemorySink:
    """Keeps records in a list: for tests and for the demo's introspection."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.records.append(dict(record))

    def close(self) -> None:
        pass


class NullSink:
    def write(self, record: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class RequestInfo:
    """Who sent the request: the parts of it an audit record keeps."""

    source_ip: str = ""
    user_agent: str = ""
    request_id: str = field(default_factory=ids.uuid4)


@functools.lru_cache(maxsize=2048)
def _secret_key(key: str) -> bool:
    low = key.lower()
    return any(w in low for w in _SECRET_WORDS)


_SCALARS = (str, int, float, bool, type(None))


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _secret_key(str(k)) else
                v if depth < 6 and type(v) in _SCALARS else _redact(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [v if depth < 6 and type(v) in _SCALARS else _redact(v, depth + 1)
                for v in value]
    return value


class Auditor:
    """The one emitter every feature uses."""

    def __init__(self, sink: AuditSink, clock: Callable[[], datetime] | None = None) -> None:
        self.sink = sink
        self._clock = clock or (lambda: datetime.now(UTC))
        self._system_clock = clock is None
        self._second: tuple[int, str] = (-1, "")

    def _event_time(self) -> str:
        """``eventTime``: UTC to the second, ``YYYY-MM-DDTHH:MM:SSZ`` (as CloudTrail writes
        it).  With the system clock the string is formatted once per second."""
        if not self._system_clock:
            return self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        second = int(time.time())
        last = self._second
        if last[0] != second:
            last = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(second)))
        return last[1]

    def emit(
        self,
        event_name: str,
        request: RequestInfo,
        *,
        user: str | None = None,
        identity_type: str = "IdpUser",
        error_code: str | None = None,
        error_message: str | None = None,
        resources: list[dict[str, str]] | None = None,
        additional: Mapping[str, Any] | None = None,
        read_only: bool = False,
        event_type: str = "AwsApiCall",
    ) -> dict[str, Any]:
        """Write one record (CloudTrail record contents) and return it."""
        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "eventTime": self._event_time(),
            "eventSource": EVENT_SOURCE,
            "eventName": event_name,
            "eventID": ids.uuid4(),
            "eventType": event_type,
            "userIdentity": {"type": identity_type, "userName": user} if user else
            {"type": "Anonymous"},
            "sourceIPAddress": request.source_ip,
            "userAgent": request.user_agent[:512],
            "requestID": request.request_id,
            "readOnly": read_only,
        }
        if error_code:
            record["errorCode"] = error_code
            if error_message:
                record["errorMessage"] = error_message
        if resources:  # copied: the record may be written after the caller goes on
            record["resources"] = [dict(r) for r in resources]
        if additional:
            record["additionalEventData"] = _redact(additional)
        self.sink.write(record)
        return record

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until the records this process has queued are written (a no-op when the sink
        writes in the request): a lookup in this process then sees its own records."""
        sink: Any = self.sink
        for _ in range(8):
            flush = getattr(sink, "flush", None)
            if flush is not None:
                return bool(flush(timeout))
            sink = getattr(sink, "inner", None)
            if sink is None:
                break
        return True

    def close(self) -> None:
        self.sink.close()


def open_sink(kind: str, path: Path | None = None, *, config: Any = None,
              generate_keys: bool = False) -> AuditSink:
    """The sink an audit config names (``config``: the ``audit`` section, for ``trail``)."""
    if kind == "trail":
        from idp.audit.trail import TrailSettings, TrailSink

        return TrailSink(TrailSettings(config.dir, config.keys_dir, config.roll_seconds,
                                       config.roll_bytes, config.integrity, generate_keys))
    if kind == "file":
        assert path is not None
        return FileSink(path)
    if kind == "stdout":
        return StreamSink()
    return NullSink()
