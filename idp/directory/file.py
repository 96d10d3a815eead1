"""The file directory: users in an admin-owned YAML file, passwords as argon2id hashes.

The file holds ``users:``, a list of mappings with ``username``, ``id`` (the stable subject),
``password_hash`` (argon2id, RFC 9106), ``groups``, ``email``, ``name``, ``disabled``,
``must_change`` (the password must be changed at the next sign-in) and
``password_changed_at`` (ISO 8601, set whenever this IdP sets a password).
Usernames match case-insensitively, as LDAP's ``uid`` does (``caseIgnoreMatch``, RFC 4519
§2.39); the identity carries the file's spelling.  The file is loaded at start and reloaded
when it changes (one ``stat`` at most once a second).  The
IdP only reads it; ``add_user``/``set_password``/``list_users`` serve the ``idp users`` CLI and
write it atomically (temporary file, ``os.replace``, mode 0600), each read-modify-write under
an exclusive ``flock`` on a sibling ``.<name>.lock`` file, so two concurrent ``idp users``
commands cannot lose each other's change.  Passwords are prepared as RFC 8265's
OpaqueString before hashing and before checking (:func:`opaque`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from idp.config import FileDirectoryConfig
from idp.directory import MAX_PASSWORD, AccountStatus, Identity, valid_username
from idp.directory.policy import PasswordPolicy, context_words
from idp.errors import AccountRefused, AuthenticationFailed, ConfigError, DirectoryUnavailable

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 1.0
"""Seconds between two ``stat`` calls that look for a changed users file."""

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""argon2id with OWASP's Password Storage Cheat Sheet parameters (m=19 MiB, t=2, p=1): the
cost of a verify is paid by one core per login, so p>1 buys nothing on the server."""

_USER_KEYS = {"username", "id", "password_hash", "groups", "email", "name", "disabled",
              "must_change", "password_changed_at"}


@dataclass(frozen=True)
class FileUser:
    """One entry of the users file."""

    username: str
    id: str
    password_hash: str
    groups: tuple[str, ...] = ()
    email: str | None = None
    name: str | None = None
    disabled: bool = False
    must_change: bool = False
    password_changed_at: datetime | None = None

    def identity(self) -> Identity:
        attributes = {k: v for k, v in (("email", self.email), ("name", self.name)) if v}
        changed = self.password_changed_at
        status = AccountStatus(must_change=self.must_change,
                               changed_at=changed.timestamp() if changed else None)
        return Identity(self.username, self.id, self.groups, attributes, status=status)

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.username, "id": self.id,
                               "password_hash": self.password_hash, "groups": list(self.groups)}
        if self.email:
            out["email"] = self.email
        if self.name:
            out["name"] = self.name
        if self.disabled:
            out["disabled"] = True
        if self.must_change:
            out["must_change"] = True
        if self.password_changed_at is not None:
            out["password_changed_at"] = self.password_changed_at.isoformat()
        return out


def _optional_str(raw: dict[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{where}.{key}: must be a string")
    return None


def _parse_user(raw: Any, where: str, problems: list[str]) -> FileUser | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    before = len(problems)
    for key in sorted(set(raw) - _USER_KEYS, key=str):
        problems.append(f"{where}: unknown key `{key}`")
    username = raw.get("username")
    if not isinstance(username, str) or not valid_username(username):
        problems.append(f"{where}.username: missing or invalid")
    subject = raw.get("id")
    if not isinstance(subject, str) or not subject.strip():
        problems.append(f"{where}.id: missing (a stable subject, e.g. a UUID)")
    pw_hash = raw.get("password_hash")
    if not isinstance(pw_hash, str) or not pw_hash.startswith("$argon2id$"):
        problems.append(f"{where}.password_hash: must be an argon2id hash (`$argon2id$…`)")
    groups = raw.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        problems.append(f"{where}.groups: must be a list of group names")
        groups = []
    email = _optional_str(raw, "email", where, problems)
    name = _optional_str(raw, "name", where, problems)
    flags = {}
    for key in ("disabled", "must_change"):
        flags[key] = raw.get(key, False)
        if not isinstance(flags[key], bool):
            problems.append(f"{where}.{key}: must be true or false")
    changed = _timestamp(raw.get("password_changed_at"), f"{where}.password_changed_at",
                         problems)
    if len(problems) > before:
        return None
    assert isinstance(username, str) and isinstance(subject, str) and isinstance(pw_hash, str)
    return FileUser(username, subject, pw_hash, tuple(groups), email, name,
                    bool(flags["disabled"]), bool(flags["must_change"]), changed)


def _timestamp(value: Any, where: str, problems: list[str]) -> datetime | None:
    """An ISO 8601 time (YAML may already have read it as one); naive times are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, datetime):
        problems.append(f"{where}: must be an ISO 8601 time")
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_users(data: Any, source: str = "users file") -> list[FileUser]:
    """Validate the users file's content; raise :class:`ConfigError` listing every problem."""
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"users"}:
        raise ConfigError([f"{source}: must be a mapping with one key, `users`"])
    raw_users = data.get("users") or []
    if not isinstance(raw_users, list):
        raise ConfigError([f"{source}: `users` must be a list"])
    problems: list[str] = []
    users: list[FileUser] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_users):
        user = _parse_user(raw, f"{source}: users[{i}]", problems)
        if user is None:
            continue
        if user.username.casefold() in seen:
            problems.append(f"{source}: users[{i}]: duplicate username `{user.username}`")
        seen.add(user.username.casefold())
        users.append(user)
    if problems:
        raise ConfigError(problems)
    return users


def read_users(path: Path) -> list[FileUser]:
    """The users of ``path``; a missing file has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    return parse_users(data, str(path))


def write_users(path: Path, users: Sequence[FileUser]) -> None:
    """Replace ``path`` atomically (temporary file in the same folder, ``os.replace``), 0600."""
    text = yaml.safe_dump({"users": [u.to_yaml() for u in users]}, sort_keys=False,
                          allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def opaque(password: str) -> str:
    """A password prepared as RFC 8265 §4.2 (OpaqueString) prepares it before comparison:
    non-ASCII spaces mapped to U+0020 (§4.2.2 additional mapping rule) and Unicode
    normalization form C (§4.2.2 normalization rule), so that "é" typed as one code point or
    as "e" + U+0301 is the same password.  The FreeformClass repertoire check is not applied
    (an unusual character is allowed, not refused)."""
    if password.isascii():
        return password
    mapped = "".join(" " if c != " " and unicodedata.category(c) == "Zs" else c
                     for c in password)
    return unicodedata.normalize("NFC", mapped)


def _check_password(password: str) -> None:
    if not password:
        raise ConfigError(["the password must not be empty"])
    if len(password) > MAX_PASSWORD:
        raise ConfigError([f"the password is longer than {MAX_PASSWORD} characters"])


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write of ``path`` (waits for the holder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def add_user(path: Path, username: str, password: str, groups: Sequence[str] = (),
             email: str | None = None, name: str | None = None, *,
             policy: PasswordPolicy | None = None, must_change: bool = False) -> FileUser:
    """Add a user with a fresh argon2id hash and a random UUID as subject; the password must
    meet ``policy`` (the default NIST SP 800-63B rules when none is given)."""
    if not valid_username(username):
        raise ConfigError([f"invalid username `{username}`"])
    if any(not g or g != g.strip() for g in groups):
        raise ConfigError(["group names must be non-empty, without surrounding spaces"])
    _check_password(password)
    (policy or PasswordPolicy()).enforce(password, context_words(username, email, name))
    pw_hash = HASHER.hash(opaque(password))  # slow: outside the lock
    with _exclusive(path):
        users = read_users(path)
        if any(u.username.casefold() == username.casefold() for u in users):
            raise ConfigError([f"user `{username}` already exists"])
        user = FileUser(username, str(uuid.uuid4()), pw_hash, tuple(dict.fromkeys(groups)),
                        email or None, name or None, must_change=must_change,
                        password_changed_at=_now())
        write_users(path, [*users, user])
    return user


class _NoRules(PasswordPolicy):
    """For callers that checked the rules themselves (with the person's full context)."""

    def enforce(self, password: str, context: Sequence[str] = ()) -> None:
        pass


_NO_RULES = _NoRules()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def set_password(path: Path, username: str, password: str, *,
                 policy: PasswordPolicy | None = None, must_change: bool = False) -> FileUser:
    """Replace a user's password hash (argon2id, the current parameters), after the policy's
    check; clears ``must_change`` unless asked to set it (an admin's temporary password)."""
    _check_password(password)
    user = _find(read_users(path), username, path)
    (policy or PasswordPolicy()).enforce(password,
                                         context_words(user.username, user.email, user.name))
    pw_hash = HASHER.hash(opaque(password))
    return _update(path, username, lambda u: replace(
        u, password_hash=pw_hash, must_change=must_change, password_changed_at=_now()))


def set_disabled(path: Path, username: str, disabled: bool) -> FileUser:
    """``idp users disable|enable``: a disabled user cannot sign in, refresh, or keep a
    session past the next directory re-check."""
    return _update(path, username, lambda u: replace(u, disabled=disabled))


def remove_user(path: Path, username: str) -> FileUser:
    """``idp users remove``: delete the entry (the subject ID is never reused)."""
    with _exclusive(path):
        users = read_users(path)
        user = _find(users, username, path)
        write_users(path, [u for u in users if u is not user])
    return user


def _find(users: Sequence[FileUser], username: str, path: Path) -> FileUser:
    for user in users:
        if user.username.casefold() == username.casefold():
            return user
    raise ConfigError([f"no user `{username}` in {path}"])


def _update(path: Path, username: str, change: Callable[[FileUser], FileUser]) -> FileUser:
    with _exclusive(path):
        users = read_users(path)
        user = _find(users, username, path)
        new = change(user)
        write_users(path, [new if u is user else u for u in users])
    return new


def list_users(path: Path) -> list[FileUser]:
    """The users of the file, in file order."""
    return read_users(path)


class FileDirectory:
    """A :class:`idp.directory.Directory` over a YAML users file."""

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._path = Path(path)
        self._hasher = hasher or HASHER
        self._clock = clock
        self._lock = threading.Lock()
        # Unknown users are checked against this hash: same cost, same answer.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._users: dict[str, FileUser] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._problems: list[str] = []
        try:
            self._reload(os.stat(self._path))
        except OSError as exc:
            raise ConfigError([f"{self._path}: cannot read ({exc.strerror})"]) from exc
        if self._problems:
            raise ConfigError(self._problems)

    @classmethod
    def from_config(cls, config: FileDirectoryConfig) -> FileDirectory:
        return cls(config.path)

    def _reload(self, st: os.stat_result) -> None:
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            users = read_users(self._path)
        except ConfigError as exc:
            self._problems = exc.problems
            log.error("users file %s is invalid, refusing logins: %s", self._path, exc.description)
            return
        self._users = {u.username.casefold(): u for u in users}
        self._problems = []
        log.info("loaded %d users from %s", len(users), self._path)

    def _current(self) -> dict[str, FileUser]:
        """The users, reloaded first when the file changed; a broken file denies everything."""
        with self._lock:
            now = self._clock()
            if now - self._checked >= RELOAD_INTERVAL:
                self._checked = now
                try:
                    self._reload(os.stat(self._path))
                except OSError as exc:
                    self._stamp = None
                    self._problems = [f"{self._path}: cannot read ({exc.strerror})"]
            if self._problems:
                raise DirectoryUnavailable(debug="; ".join(self._problems))
            return self._users

    def authenticate(self, username: str, password: str) -> Identity:
        """Check an argon2id hash (RFC 9106); one error for every cause of failure."""
        if not password or len(password) > MAX_PASSWORD or not valid_username(username):
            raise AuthenticationFailed(debug="empty, over-long or malformed credentials")
        user = self._current().get(username.casefold())
        if user is None:
            self._verify(self._dummy_hash, password)
            raise AuthenticationFailed(debug=f"unknown user `{username}`")
        if not self._verify(user.password_hash, password):
            raise AuthenticationFailed(debug=f"wrong password for `{username}`")
        if user.disabled:
            raise AccountRefused("AccountDisabled", debug=f"`{username}` is disabled")
        if self._hasher.check_needs_rehash(user.password_hash):
            log.info("the hash of `%s` uses old parameters: `idp users passwd` renews it", username)
        return user.identity()

    def change_password(self, username: str, current: str, new: str) -> None:
        """Self-service change: ``current`` checked like a sign-in, then a fresh argon2id
        hash written (RFC 9106); ``must_change`` is cleared.  The caller applied the rules."""
        identity = self.authenticate(username, current)
        set_password(self._path, identity.username, new, policy=_NO_RULES)
        with self._lock:
            self._checked = float("-inf")  # the next read sees the new hash

    def reset_password(self, username: str, new: str) -> None:
        """Forgotten-password reset (the link proved the mailbox): a fresh argon2id hash."""
        set_password(self._path, username, new, policy=_NO_RULES)
        with self._lock:
            self._checked = float("-inf")

    def subject_of(self, username: str) -> str | None:
        """The subject of a user of the file, disabled or not (for revocation)."""
        user = self._current().get(username.casefold()) if valid_username(username) else None
        return user.id if user else None

    def find_by_email(self, email: str) -> Identity | None:
        """The enabled person with that e-mail address (case-insensitive), if exactly one."""
        found = [u for u in self._current().values()
                 if u.email and u.email.casefold() == email.casefold() and not u.disabled]
        return found[0].identity() if len(found) == 1 else None

    def _verify(self, pw_hash: str, password: str) -> bool:
        """The prepared password (:func:`opaque`) against the hash; when preparing changed it,
        also the password as typed, for hashes written before passwords were prepared.  The
        number of hash checks depends only on the password, never on the user, so an unknown
        user costs what a wrong password costs."""
        prepared = opaque(password)
        ok = self._check(pw_hash, prepared)
        if prepared != password:
            ok = self._check(pw_hash, password) or ok
        return ok

    def _check(self, pw_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(pw_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def lookup(self, username: str) -> Identity | None:
        if not valid_username(username):
            return None
        user = self._current().get(username.casefold())
        return None if user is None or user.disabled else user.identity()

    def ping(self) -> None:
        self._current()

    def close(self) -> None:
        pass
