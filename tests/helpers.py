"""Small helpers shared by the foundation tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.app import Components, build_components, create_app
from idp.audit import Auditor, MemorySink
from idp.config import Config, parse_config
from idp.demo import USERS_FILE
from idp.directory import Directory, Identity

SECRET = "test-secret-key-0123456789abcdef-0123456789"


def config(tmp_path: Path, keys_dir: Path, **sections: Any) -> Config:
    """A valid config (file directory with the demo users, memory store) with overrides."""
    data: dict[str, Any] = {
        "issuer": "http://127.0.0.1:8000",
        "secret_key": SECRET,
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(keys_dir), "generate": True},
        "audit": {"sink": "none"},
        "metadata_dirs": [str(tmp_path / "metadata")],
    }
    data.update(sections)
    return parse_config(data)


class CountingDirectory:
    """Wraps a real directory and counts the calls that reach it."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.calls = 0

    def authenticate(self, username: str, password: str) -> Identity:
        self.calls += 1
        return self.inner.authenticate(username, password)

    def lookup(self, username: str) -> Identity | None:
        return self.inner.lookup(username)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


def make_app(cfg: Config, *, demo: bool = False,
             **backends: Any) -> tuple[Flask, Components, MemorySink]:
    sink = MemorySink()
    comps = build_components(cfg, demo=demo, auditor=Auditor(sink), **backends)
    return create_app(cfg, comps, demo=demo), comps, sink


def csrf(client: FlaskClient, path: str = "/login") -> str:
    """GET a page and return the CSRF token of its form."""
    page = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, f"no csrf_token on {path}"
    return m.group(1)


def login(client: FlaskClient, username: str, password: str, **extra: str) -> Any:
    token = csrf(client, "/login?reauth=1")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token, **extra})
