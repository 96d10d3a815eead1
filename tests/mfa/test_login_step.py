"""The second step after the password, step-up, and self-service at /account/mfa."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.app import Components
from idp.audit import MemorySink
from idp.mfa import totp
from tests.mfa.web import (
    csrf,
    form_value,
    login,
    mfa_app,
    session_cookie,
    submit_code,
    unused_code,
    wrong,
)

Env = tuple[Flask, Components, MemorySink]


@pytest.fixture
def env(tmp_path: Path, demo_keys_dir: Path) -> Iterator[Env]:
    app, comps, sink = mfa_app(tmp_path, demo_keys_dir)
    yield app, comps, sink
    comps.close()


@pytest.fixture
def client(env: Env) -> FlaskClient:
    return env[0].test_client()


def events(sink: MemorySink, name: str) -> list[dict[str, object]]:
    return [r for r in sink.records if r["eventName"] == name]


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_people_without_factor_sign_in_with_password_alone(client: FlaskClient,
                                                           user: str) -> None:
    r = login(client, user, f"{user}-password")
    assert r.status_code == 303 and r.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200


def test_password_alone_leaves_session_pending_until_second_factor(client: FlaskClient) -> None:
    r = login(client, "dave", "dave-password")
    assert r.status_code == 303 and r.headers["Location"] == "/login/mfa?next=%2Faccount"
    # the pending session signs no one in: not the account page, not a protocol
    assert client.get("/account").status_code == 302
    page = client.get("/login/mfa?next=/account").get_data(as_text=True)
    assert "password" not in page.lower() and 'name="code"' in page
    r = submit_code(client, unused_code())
    assert r.status_code == 303 and r.headers["Location"] == "/account"
    assert "used in this session" in client.get("/account").get_data(as_text=True)


def test_second_factor_renews_the_session_id(client: FlaskClient, env: Env) -> None:
    first = session_cookie(login(client, "dave", "dave-password"))
    second = session_cookie(submit_code(client, unused_code()))
    assert first != second
    sid = second.split("=", 1)[1].split(";")[0]
    sess = env[1].sessions.get(sid)
    assert sess is not None and sess.amr == ["pwd", "otp", "mfa"] and sess.mfa


def test_wrong_and_replayed_codes_refused(client: FlaskClient, env: Env) -> None:
    login(client, "dave", "dave-password")
    assert submit_code(client, wrong()).status_code == 401
    code = unused_code()
    assert submit_code(client, code).status_code == 303
    login(client, "dave", "dave-password", reauth="1")
    r = submit_code(client, code)
    assert r.status_code == 401 and "not valid" in r.get_data(as_text=True)
    assert [e.get("errorCode") for e in events(env[2], "MfaVerify")] == [
        "InvalidCode", None, "ReplayedCode"]


def test_lockout_answers_429_with_retry_after(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, sink = mfa_app(tmp_path, demo_keys_dir, factor_failures=3)
    c = app.test_client()
    login(c, "dave", "dave-password")
    for _ in range(3):
        assert submit_code(c, wrong()).status_code == 401
    r = submit_code(c, unused_code())
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert len(events(sink, "MfaLockout")) == 1
    comps.close()


def test_second_step_without_session_goes_to_login(client: FlaskClient) -> None:
    r = client.get("/login/mfa?next=/account")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?")


def test_second_step_refuses_missing_csrf(client: FlaskClient) -> None:
    login(client, "dave", "dave-password")
    r = client.post("/login/mfa", data={"method": "totp", "code": unused_code()})
    assert r.status_code == 400


def test_required_group_without_factor_is_refused(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, sink = mfa_app(tmp_path, demo_keys_dir, require={"groups": ["engineering"]})
    c = app.test_client()
    r = login(c, "bob", "bob-password")
    assert r.status_code == 403 and "second factor is required" in r.get_data(as_text=True)
    assert events(sink, "Login")[-1]["errorCode"] == "MfaNotEnrolled"
    assert login(c, "carol", "carol-password").status_code == 303
    comps.close()


def test_grace_signs_in_and_sends_to_enrol(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = mfa_app(tmp_path, demo_keys_dir, require={"groups": ["engineering"]},
                            grace=True)
    c = app.test_client()
    r = login(c, "bob", "bob-password")
    assert r.status_code == 303 and r.headers["Location"] == "/account/mfa?enrol=1"
    assert "needs a second factor" in c.get("/account/mfa?enrol=1").get_data(as_text=True)
    comps.close()


def enrol_totp(client: FlaskClient) -> tuple[str, list[str]]:
    token = csrf(client, "/account/mfa")
    page = client.post("/account/mfa/totp", data={"csrf_token": token}).get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    assert "<svg" in page
    r = client.post("/account/mfa/totp/confirm", data={
        "csrf_token": form_value(page, "csrf_token"), "pending": form_value(page, "pending"),
        "name": "phone", "code": totp.code_at(secret, time.time())})
    assert r.status_code == 200
    codes = re.findall(r"<code>([0-9a-z]{5}-[0-9a-z]{5})</code>", r.get_data(as_text=True))
    return secret, codes


def test_enrol_then_sign_in_with_code_and_recovery_code_once(client: FlaskClient) -> None:
    login(client, "alice", "alice-password")
    secret, codes = enrol_totp(client)
    assert len(codes) == 10
    r = login(client, "alice", "alice-password", reauth="1")
    assert r.headers["Location"].startswith("/login/mfa")
    assert submit_code(client, totp.code_at(secret, time.time() + totp.STEP)).status_code == 303
    login(client, "alice", "alice-password", reauth="1")
    assert submit_code(client, codes[0], method="recovery").status_code == 303
    login(client, "alice", "alice-password", reauth="1")
    assert submit_code(client, codes[0], method="recovery").status_code == 401


def test_remove_needs_a_fresh_second_factor(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = mfa_app(tmp_path, demo_keys_dir, step_max_age=30)
    c = app.test_client()
    login(c, "dave", "dave-password")
    submit_code(c, unused_code())
    page = c.get("/account/mfa").get_data(as_text=True)
    factor = re.search(r'data-factor="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    # make the second factor stale: move the session's mfa_time back past step_max_age
    sess_id = c.get_cookie("idp_session").value  # type: ignore[union-attr]
    sess = comps.sessions.get(sess_id)
    assert sess is not None and sess.mfa_time is not None
    sess.mfa_time -= 60
    comps.sessions.save(sess)
    token = csrf(c, "/account/mfa")
    r = c.post("/account/mfa/remove", data={"csrf_token": token, "factor": factor})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login/mfa")
    assert comps.mfa is not None and comps.mfa.enrolment("dave").factors
    comps.close()


def test_rename_and_remove_with_fresh_factor(client: FlaskClient, env: Env) -> None:
    login(client, "dave", "dave-password")
    submit_code(client, unused_code())
    page = client.get("/account/mfa").get_data(as_text=True)
    factor = re.search(r'data-factor="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    token = csrf(client, "/account/mfa")
    client.post("/account/mfa/rename", data={"csrf_token": token, "factor": factor,
                                             "name": "work phone"})
    assert "work phone" in client.get("/account/mfa").get_data(as_text=True)
    r = client.post("/account/mfa/remove", data={"csrf_token": token, "factor": factor})
    assert r.status_code == 303
    assert 'id="no-factors"' in client.get("/account/mfa").get_data(as_text=True)
    assert [e["eventName"] for e in env[2].records if e["eventName"] in {
        "MfaRename", "MfaRemove"}] == ["MfaRename", "MfaRemove"]
