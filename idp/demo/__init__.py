"""The embedded demo: one process, no outside service (DESIGN.md, "The demo")."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml

from idp.audit import RequestInfo
from idp.config import Config, parse_config
from idp.errors import ConfigError
from idp.mfa.service import MfaService

USERS_FILE = Path(__file__).parent / "users.yaml"
DEMO_LOGINS = (("alice", "alice-password", "admins, engineering"),
               ("bob", "bob-password", "engineering"),
               ("carol", "carol-password", "no group"),
               ("dave", "dave-password", "operators, TOTP"))
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
"""dave's authenticator secret (base32; for the demo only): the banner prints it."""


OVERLAY_KEYS = ("metadata_dirs", "users", "oidc", "iam", "saml", "sts", "login", "session",
                "mfa")
"""What ``idp demo --config FILE`` may add or set (see :func:`demo_config`)."""


def demo_config(port: int = 8000, *, host: str = "127.0.0.1", keys_dir: Path = Path("keys"),
                metadata_dirs: list[Path] | None = None, audit: str = "stdout",
                overlay: Path | None = None) -> Config:
    """The demo's configuration: memory store, the demo users, keys made on first run.

    ``overlay`` (``idp demo --config FILE``) is a YAML file with any of
    :data:`OVERLAY_KEYS`: ``metadata_dirs`` and ``users`` (the users file's format, with
    ``password`` in clear allowed) add to the demo's; ``oidc`` adds clients (the demo clients
    stay unless redefined); ``iam`` replaces the demo account; ``saml``, ``sts``, ``login``,
    ``session`` and ``mfa`` set those sections.  Paths in it are relative to its folder.
    Enrolments go to a folder of this process, removed at exit, unless ``mfa`` names one."""
    cwd = Path.cwd()
    data: dict[str, Any] = {
        "issuer": f"http://{host}:{port}",
        "secret_key": secrets.token_urlsafe(32),
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(cwd / keys_dir), "generate": True},
        "audit": {"sink": audit},
        "metadata_dirs": [str(cwd / p) for p in (metadata_dirs or [Path("metadata")])],
        "mfa": {"enrolments_dir": _temp_folder()},
    }
    if overlay is None:
        return parse_config(data)
    extra = _read_overlay(overlay)
    for name, value in extra.items():
        if name == "metadata_dirs":
            data["metadata_dirs"] += list(value) if isinstance(value, list) else [value]
        elif name == "users":
            data["directory"]["file"]["path"] = str(_merged_users(value, overlay))
        elif name == "mfa" and isinstance(value, dict):
            data["mfa"] = {**data["mfa"], **value}
        else:
            data[name] = value
    return parse_config(data, base_dir=overlay.resolve().parent)


def _temp_folder() -> str:
    folder = tempfile.mkdtemp(prefix="idp-demo-mfa-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def enrol_demo_factors(service: MfaService) -> None:
    """dave's authenticator, from :data:`DEMO_TOTP_SECRET`, unless he has one."""
    if not service.enrolment("dave").of_kind("totp"):
        service.enrol_totp_secret("dave", DEMO_TOTP_SECRET, "demo authenticator",
                                  RequestInfo("127.0.0.1", "idp demo"))


def _read_overlay(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: must be a mapping"])
    unknown = sorted(str(k) for k in data if k not in OVERLAY_KEYS)
    if unknown:
        raise ConfigError([f"{path}: `{k}` is not a demo setting (one of "
                           f"{', '.join(OVERLAY_KEYS)})" for k in unknown])
    return data


def _merged_users(extra: Any, source: Path) -> Path:
    """The demo users plus ``extra`` (clear passwords hashed), validated together, in a file
    of this process that is removed at exit."""
    from idp.directory.file import HASHER, opaque, parse_users, write_users

    demo = yaml.safe_load(USERS_FILE.read_text(encoding="utf-8"))["users"]
    if not isinstance(extra, list):
        raise ConfigError([f"{source}: users: must be a list"])
    added = []
    for raw in extra:
        if isinstance(raw, dict) and isinstance(raw.get("password"), str):
            password = raw["password"]
            raw = {"id": str(uuid.uuid4()),
                   **{k: v for k, v in raw.items() if k != "password"},
                   "password_hash": HASHER.hash(opaque(password))}
        added.append(raw)
    users = parse_users({"users": [*demo, *added]}, f"{source}: users (with the demo's)")
    fd, name = tempfile.mkstemp(prefix="idp-demo-users-", suffix=".yaml")
    os.close(fd)
    path = Path(name)
    atexit.register(path.unlink, missing_ok=True)
    write_users(path, users)
    return path
