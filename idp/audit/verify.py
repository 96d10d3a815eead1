"""Validate a trail's log files against its signed digest chains (in the manner of
``aws cloudtrail validate-logs``).

Each digest is checked against the published audit public key it names (RSA-SHA256,
PKCS #1 v1.5) and against the next digest of its stream, which holds its SHA-256 and
signature; each log file a valid digest names is hashed and compared.  Findings, per file:

``valid``, ``modified`` (hash differs), ``truncated`` (shorter, its last recorded event gone),
``deleted`` (named by a digest, absent), ``reordered`` (holds another delivered file's
content, or a digest moved to another name), ``forged`` (a digest whose signature does not
verify with the published key it names, or names an unknown key), ``missing`` (a digest the
chain links to is absent), ``gap`` (consecutive digests of a stream do not meet in time, or a
stream stopped without its final digest), ``unsigned`` (a log file no digest names) and
``pending`` (the open file of a live stream, not yet digested: not a failure).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.audit.trail import canonical

OK = frozenset({"valid", "pending"})


@dataclass(frozen=True)
class Finding:
    """One file's verdict."""

    path: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in OK


@dataclass
class _Digest:
    rel: str
    data: bytes
    doc: dict[str, Any]
    start: float
    end: float


def parse_time(value: str) -> float:
    """``YYYY-MM-DDTHH:MM:SSZ`` → Unix time."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def load_public_keys(folders: Iterable[Path]) -> dict[str, rsa.RSAPublicKey]:
    """Every ``<kid>.pem`` of the given folders (the archive ``<audit keys>/public``)."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    for folder in folders:
        for pem in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
            try:
                key = serialization.load_pem_public_key(pem.read_bytes())
            except ValueError:
                continue
            if isinstance(key, rsa.RSAPublicKey):
                keys[pem.stem] = key
    return keys


def _signature_ok(doc: dict[str, Any], key: rsa.RSAPublicKey) -> bool:
    try:
        key.verify(bytes.fromhex(str(doc.get("signature", ""))), canonical(doc),
                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _last_event_id(path: Path) -> str:
    """The ``eventID`` of the file's last complete JSON line ("" if none)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    lines = tail.split(b"\n")
    for raw in reversed(lines[:-1] if not tail.endswith(b"\n") else lines):
        try:
            return str(json.loads(raw).get("eventID", ""))
        except (ValueError, AttributeError):
            continue
    return ""


class Verifier:
    """Check one trail folder; :meth:`run` returns every finding."""

    def __init__(self, directory: Path, public_keys: dict[str, rsa.RSAPublicKey], *,
                 start: float | None = None, end: float | None = None,
                 grace: float = 7200.0, now: float | None = None) -> None:
        self.directory = directory
        self.keys = public_keys
        self.start = start
        self.end = end
        self.grace = grace
        self.now = time.time() if now is None else now
        self.findings: list[Finding] = []
        self._reported: set[str] = set()
        self._live: bool | None = None
        self._outside: set[str] = set()  # files named by digests outside the window

    def _add(self, path: str, status: str, detail: str = "") -> None:
        if status not in OK:
            self._reported.add(path)
        self.findings.append(Finding(path, status, detail))

    def _in_window(self, start: float, end: float) -> bool:
        return ((self.start is None or end >= self.start)
                and (self.end is None or start <= self.end))

    def run(self) -> list[Finding]:
        named: set[str] = set()
        expected: dict[str, str] = {}  # sha256 -> the file it was delivered as
        entries: list[tuple[dict[str, Any], str]] = []
        live: dict[str, bool | None] = {}
        root = self.directory / "digests"
        streams = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for folder in streams:
            for digest in self._stream(folder):
                for entry in digest.doc.get("logFiles", []):
                    named.add(entry["file"])
                    expected[entry["hashValue"]] = entry["file"]
                    if self._in_window(parse_time(entry["oldestEventTime"] or
                                                  digest.doc["digestStartTime"]),
                                       parse_time(entry["newestEventTime"] or
                                                  digest.doc["digestEndTime"])):
                        entries.append((entry, digest.rel))
            live[folder.name] = self._live
        for entry, digest_rel in entries:
            self._check_log(entry, digest_rel, expected)
        self._unsigned(named | self._outside, live)
        return self.findings

    # -- digests ----------------------------------------------------------------------------

    def _stream(self, folder: Path) -> list[_Digest]:
        """The stream's digests whose signature and place hold, chain links checked."""
        self._live = None
        good: dict[int, _Digest] = {}
        by_rel: dict[str, _Digest] = {}
        for path in sorted(folder.glob("*.json")):
            rel = path.relative_to(self.directory).as_posix()
            data = path.read_bytes()
            try:
                doc = json.loads(data)
                start, end = (parse_time(doc["digestStartTime"]),
                              parse_time(doc["digestEndTime"]))
                seq = int(doc["sequence"])
            except (ValueError, KeyError, TypeError):
                self._add(rel, "forged", "not a digest this trail wrote")
                continue
            if not self._in_window(start, end):
                by_rel[rel] = _Digest(rel, data, doc, start, end)
                self._outside.update(str(e.get("file")) for e in doc.get("logFiles", []))
                continue
            kid = str(doc.get("digestPublicKeyFingerprint", ""))
            key = self.keys.get(kid)
            if key is None:
                self._add(rel, "forged", f"signed with an unpublished key `{kid}`")
                continue
            if not _signature_ok(doc, key):
                self._add(rel, "forged", f"signature does not verify with key `{kid}`")
                continue
            if doc.get("digestFile") != rel:
                self._add(rel, "reordered", f"holds digest `{doc.get('digestFile')}`")
                continue
            digest = _Digest(rel, data, doc, start, end)
            good[seq] = by_rel[rel] = digest
            self._add(rel, "valid", f"{len(doc.get('logFiles', []))} log file(s)")
        for seq in sorted(good):
            self._link(good[seq], by_rel, folder)
        if good:
            self._live = False
            last = good[max(good)]
            if not last.doc.get("final"):
                if last.end < self.now - self.grace and (self.end is None or
                                                         self.end > last.end + self.grace):
                    self._add(last.rel, "gap", "the stream stopped without a final digest "
                              f"after {last.doc['digestEndTime']} (process killed, or later "
                              "digests deleted)")
                else:
                    self._live = True
        return [good[s] for s in sorted(good)]

    def _link(self, digest: _Digest, by_rel: dict[str, _Digest], folder: Path) -> None:
        """Check the link to the previous digest (its hash and signature, the time it ends)."""
        doc = digest.doc
        prev_rel = doc.get("previousDigestFile")
        if prev_rel is None:
            if int(doc["sequence"]) != 1:
                self._add(digest.rel, "missing", "the chain's earlier digests are absent")
            return
        prev_path = self.directory / str(prev_rel)
        if str(prev_rel) in self._reported:
            return
        if not prev_path.is_file():
            self._add(str(prev_rel), "missing", f"linked from `{digest.rel}`, absent")
            return
        data = by_rel[str(prev_rel)].data if str(prev_rel) in by_rel else prev_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != doc.get("previousDigestHashValue"):
            self._add(str(prev_rel), "forged",
                      f"not the digest `{digest.rel}` links to (hash differs)")
            return
        try:
            prev = json.loads(data)
        except ValueError:
            return
        if prev.get("signature") != doc.get("previousDigestSignature"):
            self._add(str(prev_rel), "forged", "signature differs from the one linked")
        elif prev.get("digestEndTime") != doc.get("digestStartTime"):
            self._add(digest.rel, "gap", f"starts {doc.get('digestStartTime')}, previous "
                      f"digest ends {prev.get('digestEndTime')}")

    # -- log files --------------------------------------------------------------------------

    def _check_log(self, entry: dict[str, Any], digest_rel: str,
                   expected: dict[str, str]) -> None:
        rel = str(entry["file"])
        path = self.directory / rel
        if not path.is_file():
            self._add(rel, "deleted", f"named by `{digest_rel}`")
            return
        actual = _sha256(path)
        if actual == entry["hashValue"]:
            self._add(rel, "valid", f"{entry['events']} event(s)")
            return
        if actual in expected:
            self._add(rel, "reordered", f"holds the content of `{expected[actual]}`")
            return
        size = path.stat().st_size
        if size < int(entry["bytes"]) and _last_event_id(path) != entry["lastEventID"]:
            self._add(rel, "truncated", f"{size} of {entry['bytes']} bytes, last event gone")
            return
        self._add(rel, "modified", "SHA-256 differs from the digest's")

    def _unsigned(self, named: set[str], live: dict[str, bool | None]) -> None:
        """Log files no digest names: the newest file of a live stream is ``pending``."""
        root = self.directory / "logs"
        if not root.is_dir():
            return
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(folder.glob("*.jsonl"))
            last_named = max((i for i, p in enumerate(files)
                              if p.relative_to(self.directory).as_posix() in named), default=-1)
            for i, path in enumerate(files):
                rel = path.relative_to(self.directory).as_posix()
                if rel in named:
                    continue
                opened = _file_time(path.name)
                if not self._in_window(opened, opened if self.end is None else self.end):
                    continue
                state = live.get(folder.name)
                is_live = (path.stat().st_mtime >= self.now - self.grace if state is None
                           else state)
                if i > last_named and is_live:
                    self._add(rel, "pending", "written since the stream's last digest")
                else:
                    self._add(rel, "unsigned", "named by no digest")


def _file_time(name: str) -> float:
    """The opening time in a log file name ``<stream>_<YYYYMMDDTHHMMSSZ>_<seq>.jsonl``."""
    try:
        return datetime.strptime(name.rsplit("_", 2)[-2], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC).timestamp()
    except (ValueError, IndexError):
        return 0.0


def verify(directory: Path, key_folders: Iterable[Path], **kwargs: Any) -> list[Finding]:
    """Every finding for a trail folder (see :class:`Verifier`)."""
    return Verifier(directory, load_public_keys(key_folders), **kwargs).run()
