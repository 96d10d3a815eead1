"""Durable enrolments: one JSON file per person in a folder, written atomically.

Why a folder and not Redis: enrolments are user data that must outlive both the IdP and the
store.  The store is Redis for sessions and one-time values, where every key has a TTL and
losing data (a restart without AOF, an eviction, a failover to a replica that missed writes)
costs at most a sign-in; losing an enrolment would silently drop a person's second factor, or
bring back a removed one.  A folder (by default ``mfa/`` beside the users file; any folder
for LDAP users) is backed up with the users file, works with every store backend, and is
shared between processes and instances like the users file (a shared volume for several
hosts).  Secrets in it are sealed (:mod:`idp.mfa.crypto`), so the files alone give no codes.

Each person's file is ``<sha256(casefolded username)>.json`` (no attacker-chosen file names),
mode 0600, replaced with ``os.replace`` after ``fsync``; every read-modify-write holds an
exclusive ``flock`` on the folder's ``.lock`` file, so two workers cannot lose each other's
change (a recovery code spent twice, a factor removed and re-added).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from idp.errors import UnavailableError
from idp.mfa.model import Enrolment

T = TypeVar("T")


def _file_name(username: str) -> str:
    return hashlib.sha256(username.strip().casefold().encode("utf-8", "surrogatepass")
                          ).hexdigest() + ".json"


class EnrolmentStore:
    """Read and change enrolments in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _ensure(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._ensure()
            fh = open(self.folder / ".lock", "a")  # noqa: SIM115
        except OSError as exc:
            raise UnavailableError(debug=f"mfa enrolments folder: {exc}") from exc
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield
        finally:
            fh.close()

    def get(self, username: str) -> Enrolment:
        """The person's enrolment (empty when they have none)."""
        path = self.folder / _file_name(username)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Enrolment(username)
        except (OSError, ValueError) as exc:
            raise UnavailableError(debug=f"mfa enrolment unreadable: {exc}") from exc
        return Enrolment.from_json(raw)

    def update(self, username: str, change: Callable[[Enrolment], T]) -> T:
        """Apply ``change`` to the person's enrolment and write it, under the lock.  When
        ``change`` raises, nothing is written."""
        with self._locked():
            enrolment = self.get(username)
            result = change(enrolment)
            self._write(enrolment)
            return result

    def all(self) -> Iterator[Enrolment]:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            yield Enrolment.from_json(json.loads(path.read_text(encoding="utf-8")))

    def _write(self, enrolment: Enrolment) -> None:
        path = self.folder / _file_name(enrolment.username)
        if not enrolment.factors and not enrolment.recovery:
            path.unlink(missing_ok=True)
            return
        data = json.dumps(enrolment.to_json(), separators=(",", ":"), sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
