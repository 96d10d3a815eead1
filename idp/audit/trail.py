"""Rolling, digested, signed audit log files (log file integrity validation in the manner of
AWS CloudTrail: "Validating CloudTrail log file integrity", digest file structure).

Every writing process has its own *stream* (``<host>-<pid>-<random>``): its own log files and
its own chain of digest files, so that gunicorn/granian workers and several hosts never share
a file or a lock.  A log file rolls over when its period ends (``roll_seconds``, aligned to the
clock) or when it would pass ``roll_bytes``.  At the end of each period the stream writes a
digest file, even when no log file was delivered in it, naming every log file closed in the
period with its SHA-256, size, event count, first and last event time and ID, and the hash
and signature of the stream's previous digest; the digest is signed (RSA-SHA256, PKCS #1
v1.5) with the active ``RS256`` key of the audit key folder, a key ring of its own
(:mod:`idp.keys`), so audit keys rotate apart from the SAML/OIDC keys.  Every public key that
ever signed a digest is archived in ``<keys>/public/<kid>.pem`` and never deleted.

Layout under the trail folder::

    logs/<stream>/<stream>_<opened>_<seq>.jsonl
    digests/<stream>/<stream>_<period end>_<seq>.json
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.errors import KeyStoreError
from idp.keys import MANIFEST, KeyRing, SigningKey, init_keys

DIGEST_VERSION = "1"
SIGNATURE_ALGORITHM = "SHA256withRSA"
_STAMP = "%Y%m%dT%H%M%SZ"


def stamp(t: float) -> str:
    """A file-name time: ``YYYYMMDDTHHMMSSZ`` (UTC)."""
    return time.strftime(_STAMP, time.gmtime(t))


def iso(t: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, as ``eventTime`` is written."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The bytes a digest signature covers: the digest without ``signature``, sorted keys,
    no spaces."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def public_pem(key: SigningKey) -> bytes:
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def archive_public_keys(ring: KeyRing, directory: Path) -> None:
    """Write ``public/<kid>.pem`` for every RSA key of the ring (kept forever: old digests
    stay verifiable after their key is rotated out)."""
    public = directory / "public"
    public.mkdir(parents=True, exist_ok=True)
    for key in ring.keys:
        if key.alg != "RS256":
            continue
        path = public / f"{key.kid}.pem"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(public_pem(key))
            tmp.replace(path)


def audit_key_ring(directory: Path) -> KeyRing:
    """The audit key ring as it is (nothing written)."""
    if not (directory / MANIFEST).exists():
        raise KeyStoreError("no audit keys: run `idp audit keys init`", debug=str(directory))
    return KeyRing.load(directory)


def load_audit_keys(directory: Path, *, generate: bool = False) -> KeyRing:
    """The audit key ring (created when ``generate`` and missing), public keys archived."""
    if generate:
        init_keys(directory, common_name="idp-audit")
    ring = audit_key_ring(directory)
    archive_public_keys(ring, directory)
    return ring


class PartialWrite(OSError):
    """A batch failed after its first ``written`` records were appended (and accounted)."""

    def __init__(self, written: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"{cause.strerror or cause} ({written} written)")
        self.written = written


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:63] or "host"


@dataclass
class _LogFile:
    path: Path
    fh: IO[bytes]
    sha: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    events: int = 0
    first_time: str = ""
    last_time: str = ""
    first_id: str = ""
    last_id: str = ""
    pending_first: tuple[str, str] | None = None  # of lines not yet appended
    pending_last: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class TrailSettings:
    """Where and how a trail writes (``audit`` section of the config)."""

    directory: Path
    keys_dir: Path
    roll_seconds: int = 3600
    roll_bytes: int = 64 * 1024 * 1024
    integrity: bool = True
    generate_keys: bool = False


class TrailSink:
    """An :class:`~idp.audit.AuditSink` writing a stream of rolling log files and, with
    ``integrity``, its signed digest chain.  Safe across ``fork``: a child process that writes
    starts its own stream (it never appends to its parent's files)."""

    def __init__(self, settings: TrailSettings, clock: Any = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._ring = (load_audit_keys(settings.keys_dir, generate=settings.generate_keys)
                      if settings.integrity else None)
        self._pid = -1
        self._closed = False
        self._timer: threading.Timer | None = None

    @property
    def key_ring(self) -> KeyRing | None:
        """The keys that sign this trail's digests (``None`` without ``integrity``)."""
        return self._ring

    # -- stream state (per process) ---------------------------------------------------------

    def _start_stream(self) -> None:
        now = self._clock()
        self._pid = os.getpid()
        self.stream = f"{_host()}-{self._pid}-{secrets.token_hex(3)}"
        self._logs = self.settings.directory / "logs" / self.stream
        self._digests = self.settings.directory / "digests" / self.stream
        self._logs.mkdir(parents=True, exist_ok=True)
        if self._ring is not None:
            self._digests.mkdir(parents=True, exist_ok=True)
        self._current: _LogFile | None = None
        self._delivered: list[dict[str, Any]] = []
        self._seq = 0
        self._digest_seq = 0
        self._period_start = now
        self._period_end = self._next_boundary(now)
        self._previous: tuple[str, str, str] | None = None  # file, sha256, signature
        self._timer = None
        atexit.register(self.close)
        self._arm_timer()

    def _next_boundary(self, now: float) -> float:
        step = self.settings.roll_seconds
        return (int(now) // step + 1) * step

    def _arm_timer(self) -> None:
        """Deliver the period's digest at its end even when nothing is written (CloudTrail
        delivers digests for periods without log files: a silent stream is told from a
        stream whose files were deleted)."""
        delay = max(0.05, self._period_end - self._clock())
        timer = threading.Timer(delay, self._on_timer)
        timer.daemon = True
        timer.start()
        self._timer = timer

    def _on_timer(self) -> None:
        with self._lock:
            if self._closed or self._pid != os.getpid():
                return
            if self._clock() >= self._period_end:
                self._end_period(self._period_end)
            self._arm_timer()

    # -- writing ----------------------------------------------------------------------------

    def write(self, record: Mapping[str, Any]) -> None:
        self.write_many((record,))

    def write_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append records: one write and flush per log file they go to.  A write that fails
        (disk full) leaves the file and its digest entry as they were before the call, and
        raises: the caller may try the same records again."""
        lines = [(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n").encode()
                 for r in records]
        with self._lock:
            if self._closed:
                return
            if self._pid != os.getpid():
                self._start_stream()
            if self._clock() >= self._period_end:
                self._end_period(self._period_end)
            chunk: list[bytes] = []
            size = self._current.size if self._current is not None else 0  # with the chunk
            written = 0
            try:
                for record, line in zip(records, lines, strict=True):
                    cur = self._current
                    if cur is not None and size and size + len(line) > self.settings.roll_bytes:
                        written += self._append(chunk)
                        chunk = []
                        self._close_file()
                        cur = None
                    if cur is None:
                        cur = self._current = self._open_file()
                        size = 0
                    chunk.append(line)
                    size += len(line)
                    if self._ring is not None:
                        stamp_ = (str(record.get("eventTime", "")), str(record.get("eventID", "")))
                        if not cur.first_time and cur.pending_first is None:
                            cur.pending_first = stamp_
                        cur.pending_last = stamp_
                written += self._append(chunk)
            except OSError as exc:
                if self._current is not None:
                    self._current.pending_first = None
                raise PartialWrite(written, exc) from exc

    def _append(self, lines: list[bytes]) -> int:
        """Write ``lines`` to the current log file at once, then account for them (hash,
        size, events, first and last event); on failure the file is cut back to its size."""
        cur = self._current
        if cur is None or not lines:
            return 0
        data = b"".join(lines)
        fd = cur.fh.fileno()
        try:
            done = 0
            while done < len(data):
                done += os.write(fd, data[done:])
        except OSError:
            try:
                os.ftruncate(fd, cur.size)
            except OSError:
                pass
            raise
        cur.size += len(data)
        cur.events += len(lines)
        if self._ring is not None:
            for line in lines:
                cur.sha.update(line)
            if not cur.first_time and cur.pending_first is not None:
                cur.first_time, cur.first_id = cur.pending_first
            cur.last_time, cur.last_id = cur.pending_last
        cur.pending_first = None
        return len(lines)

    def _open_file(self) -> _LogFile:
        self._seq += 1
        path = self._logs / f"{self.stream}_{stamp(self._clock())}_{self._seq:06d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        return _LogFile(path, os.fdopen(fd, "ab"))

    def _close_file(self) -> None:
        cur = self._current
        if cur is None:
            return
        cur.fh.flush()
        os.fsync(cur.fh.fileno())
        cur.fh.close()
        self._current = None
        if self._ring is None:
            return
        self._delivered.append({
            "file": cur.path.relative_to(self.settings.directory).as_posix(),
            "hashAlgorithm": "SHA-256",
            "hashValue": cur.sha.hexdigest(),
            "bytes": cur.size,
            "events": cur.events,
            "oldestEventTime": cur.first_time,
            "newestEventTime": cur.last_time,
            "firstEventID": cur.first_id,
            "lastEventID": cur.last_id,
        })

    def _end_period(self, end: float, *, final: bool = False) -> None:
        """Close the log file and deliver the digest of ``[period start, end]`` (every file
        closed in it); the next period starts where this one ended."""
        self._close_file()
        end = max(end, self._period_start)
        if self._ring is not None:
            self._write_digest(self._period_start, end, final)
        self._period_start = end
        self._period_end = self._next_boundary(max(end, self._clock()))

    def _write_digest(self, start: float, end: float, final: bool) -> None:
        assert self._ring is not None
        key = self._ring.active("RS256")
        self._digest_seq += 1
        path = self._digests / f"{self.stream}_{stamp(end)}_{self._digest_seq:06d}.json"
        rel = path.relative_to(self.settings.directory).as_posix()
        prev = self._previous
        doc: dict[str, Any] = {
            "digestVersion": DIGEST_VERSION,
            "stream": self.stream,
            "sequence": self._digest_seq,
            "digestFile": rel,
            "digestStartTime": iso(start),
            "digestEndTime": iso(end),
            "digestPublicKeyFingerprint": key.kid,
            "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
            "previousDigestFile": prev[0] if prev else None,
            "previousDigestHashAlgorithm": "SHA-256",
            "previousDigestHashValue": prev[1] if prev else None,
            "previousDigestSignature": prev[2] if prev else None,
            "final": final,
            "logFiles": self._delivered,
        }
        private = key.private_key
        assert isinstance(private, rsa.RSAPrivateKey)
        signature = private.sign(canonical(doc), padding.PKCS1v15(), hashes.SHA256()).hex()
        doc["signature"] = signature
        data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        self._previous = (rel, hashlib.sha256(data).hexdigest(), signature)
        self._delivered = []

    def roll(self) -> None:
        """End the current period now (a digest for what was written so far)."""
        with self._lock:
            if self._pid == os.getpid() and not self._closed:
                self._end_period(self._clock())

    def close(self) -> None:
        """Close the last log file and deliver the stream's final digest."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._pid == os.getpid():
                self._end_period(self._clock(), final=True)
