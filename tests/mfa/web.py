"""Helpers for the MFA web tests: a demo-like app with its own enrolments folder."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient

from idp.app import Components
from idp.audit import MemorySink
from idp.demo import DEMO_TOTP_SECRET
from idp.mfa import totp
from tests.helpers import config, csrf, login, make_app

__all__ = ["DEMO_TOTP_SECRET", "csrf", "login", "mfa_app", "submit_code", "unused_code"]


def mfa_app(tmp_path: Path, keys_dir: Path, *, demo: bool = True, **mfa: Any
            ) -> tuple[Flask, Components, MemorySink]:
    cfg = config(tmp_path, keys_dir, mfa={"enrolments_dir": str(tmp_path / "mfa"), **mfa})
    return make_app(cfg, demo=demo)


def submit_code(client: FlaskClient, code: str, *, method: str = "totp",
                next_path: str = "/account") -> Any:
    token = csrf(client, "/login/mfa?" + urlencode({"method": method, "next": next_path}))
    return client.post("/login/mfa", data={"method": method, "code": code,
                                           "csrf_token": token, "next": next_path})


def unused_code(secret: str = DEMO_TOTP_SECRET) -> str:
    """A valid code whose step no earlier test step spent: the next step's (±1 accepted)."""
    return totp.code_at(secret, time.time() + totp.STEP)


def wrong(secret: str = DEMO_TOTP_SECRET) -> str:
    now = time.time()
    near = {totp.code_at(secret, now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{i:06d}" for i in range(10)) if c not in near)


def session_cookie(resp: Any) -> str:
    return next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("idp_session="))


def form_value(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no {name} on the page"
    return m.group(1)
