"""What the client keeps between runs, under ``$IDP_HOME`` (default ``~/.idp``):

* ``profiles.json``: per profile its issuer, client ID, role, STS endpoint, region, duration;
* the refresh token of each login (issuer + client ID), in the OS keyring (``keyring``) when
  one is installed and usable, else in ``tokens/<hash>.json`` (0600); never printed;
* ``cache/<hash>.json`` (0600): the last role credentials of each (login, role, duration).

Every file is written to a temporary file in the same folder, made 0600 before anything is
written to it, then renamed over the old one: a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KEYRING_SERVICE = "idp"


def home() -> Path:
    return Path(os.environ.get("IDP_HOME") or Path.home() / ".idp")


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` atomically, readable by its owner only (0600, folder 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Profile:
    """One ``--profile``: which IdP, which client, which role, and where the STS is."""

    name: str
    issuer: str
    client_id: str
    role_arn: str | None = None
    sts_endpoint: str | None = None
    region: str | None = None
    duration: int | None = None
    scopes: list[str] = field(
        default_factory=lambda: ["openid", "profile", "roles", "offline_access"])

    @property
    def login_key(self) -> str:
        """The login a profile uses: one per issuer and client, shared by its profiles."""
        return f"{self.issuer.rstrip('/')}|{self.client_id}"

    @property
    def sts_url(self) -> str:
        return self.sts_endpoint or self.issuer.rstrip("/") + "/sts"


def load_profiles() -> dict[str, Profile]:
    data = read_json(home() / "profiles.json") or {}
    out: dict[str, Profile] = {}
    for name, raw in (data.get("profiles") or {}).items():
        if isinstance(raw, dict):
            with contextlib.suppress(TypeError):
                out[name] = Profile(**{**raw, "name": name})
    return out


def save_profile(profile: Profile) -> None:
    path = home() / "profiles.json"
    data = read_json(path) or {}
    profiles = data.setdefault("profiles", {})
    profiles[profile.name] = {k: v for k, v in asdict(profile).items() if k != "name"}
    write_private(path, data)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class TokenStore:
    """The refresh token of each login: the OS keyring, or a 0600 file when there is none
    (``IDP_KEYRING=off`` forces the file)."""

    def __init__(self) -> None:
        self._keyring: Any = None
        if os.environ.get("IDP_KEYRING", "").lower() not in ("off", "0", "no", "file"):
            self._keyring = _usable_keyring()

    @property
    def where(self) -> str:
        return "the OS keyring" if self._keyring is not None else "a 0600 file"

    def _file(self, login_key: str) -> Path:
        return home() / "tokens" / f"{_digest(login_key)}.json"

    def get(self, login_key: str) -> str | None:
        if self._keyring is not None:
            try:
                value = self._keyring.get_password(KEYRING_SERVICE, login_key)
            except Exception:  # noqa: BLE001 - any backend failure means "no token"
                value = None
            return str(value) if value else None
        data = read_json(self._file(login_key))
        token = data.get("refresh_token") if data else None
        return token if isinstance(token, str) and token else None

    def put(self, login_key: str, token: str) -> None:
        if self._keyring is not None:
            self._keyring.set_password(KEYRING_SERVICE, login_key, token)
        else:
            write_private(self._file(login_key), {"login": login_key, "refresh_token": token})

    def delete(self, login_key: str) -> None:
        if self._keyring is not None:
            with contextlib.suppress(Exception):
                self._keyring.delete_password(KEYRING_SERVICE, login_key)
        with contextlib.suppress(OSError):
            self._file(login_key).unlink()


def _usable_keyring() -> Any:
    """The ``keyring`` module when a real backend is configured (not the 'fail' or the
    plaintext-file backends), else ``None``."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001
        return None
    name = type(backend).__module__
    if isinstance(backend, fail.Keyring) or "plaintext" in name.lower() \
            or getattr(backend, "priority", 1) <= 0:
        return None
    return keyring


@contextlib.contextmanager
def login_lock(login_key: str) -> Iterator[None]:
    """An exclusive lock per login across processes (``flock`` on a 0600 lock file; no lock
    where ``fcntl`` does not exist)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path = home() / "locks" / f"{_digest(login_key)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def cache_path(profile: Profile, role_arn: str, duration: int | None) -> Path:
    return home() / "cache" / f"{_digest(profile.login_key, role_arn, str(duration))}.json"
