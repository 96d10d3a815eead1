"""The embedded demo: one process, no outside service (DESIGN.md, "The demo")."""

from __future__ import annotations

import secrets
from pathlib import Path

from idp.config import Config, parse_config

USERS_FILE = Path(__file__).parent / "users.yaml"
DEMO_LOGINS = (("alice", "alice-password", "admins, engineering"),
               ("bob", "bob-password", "engineering"),
               ("carol", "carol-password", "no group"))


def demo_config(port: int = 8000, *, host: str = "127.0.0.1", keys_dir: Path = Path("keys"),
                metadata_dirs: list[Path] | None = None, audit: str = "stdout") -> Config:
    """The demo's configuration: memory store, the demo users, keys made on first run."""
    return parse_config({
        "issuer": f"http://{host}:{port}",
        "secret_key": secrets.token_urlsafe(32),
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(keys_dir), "generate": True},
        "audit": {"sink": audit},
        "metadata_dirs": [str(p) for p in (metadata_dirs or [Path("metadata")])],
    })
