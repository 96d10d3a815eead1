"""Account states at sign-in and self-service password change (file directory through the
real app; LDAP and Active Directory state mapping at unit level)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from idp.audit import MemorySink
from idp.config import PasswordPolicyConfig
from idp.directory import AccountStatus, Identity
from idp.directory import ldap_state as ls
from idp.directory.file import FileDirectory, add_user, list_users, write_users
from idp.directory.ldap import ad_password_change
from idp.login.account_state import assess
from tests.helpers import config, csrf, login, make_app

PW = "amber-lantern-orbit"
NEW = "quiet-harbour-violet"
GENERIC = "Invalid username or password."


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    write_users(path, [])
    add_user(path, "zora", PW, ["engineering"], "zora@example.org", "Zora Foster")
    return path


def _app(tmp_path: Path, keys: Path, users: Path,
         **sections: Any) -> tuple[Flask, MemorySink]:
    cfg = config(tmp_path, keys, directory={"type": "file", "file": {"path": str(users)}},
                 **sections)
    app, _, sink = make_app(cfg, directory=FileDirectory(users, clock=_ticking()))
    return app, sink


def _ticking() -> Any:
    t = [0.0]

    def clock() -> float:
        t[0] += 10
        return t[0]
    return clock


def _edit(path: Path, **fields: Any) -> None:
    data = yaml.safe_load(path.read_text())
    data["users"][0].update(fields)
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
def env(tmp_path: Path, demo_keys_dir: Path, users: Path) -> Iterator[tuple[Flask, MemorySink]]:
    yield _app(tmp_path, demo_keys_dir, users)


def _change(client: FlaskClient, current: str, new: str, confirm: str | None = None) -> Any:
    token = csrf(client, "/account/password")
    return client.post("/account/password", data={
        "csrf_token": token, "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm})


def test_disabled_account_gets_the_generic_answer_and_the_audit_the_reason(
        env: tuple[Flask, MemorySink], users: Path) -> None:
    app, sink = env
    _edit(users, disabled=True)
    r = login(app.test_client(), "zora", PW)
    assert r.status_code == 401 and GENERIC in r.get_data(as_text=True)
    failed = [e for e in sink.records if e["eventName"] == "Login"]
    assert failed[-1]["errorCode"] == "AccountDisabled"
    assert failed[-1]["errorMessage"] == "Failed authentication"


def test_disabled_account_with_a_wrong_password_is_just_a_wrong_password(
        env: tuple[Flask, MemorySink], users: Path) -> None:
    app, sink = env
    _edit(users, disabled=True)
    assert login(app.test_client(), "zora", "wrong-" + PW).status_code == 401
    assert sink.records[-1]["errorCode"] == "FailedAuthentication"


def test_must_change_sends_the_person_to_the_change_form_before_anything_else(
        env: tuple[Flask, MemorySink], users: Path) -> None:
    app, _ = env
    _edit(users, must_change=True)
    c = app.test_client()
    assert login(c, "zora", PW).status_code == 303
    for path in ("/account", "/start", "/oauth2/authorize?client_id=demo-cli"):
        r = c.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/account/password"), path
    assert "must be changed" in c.get("/account/password").get_data(as_text=True)
    assert _change(c, PW, NEW).status_code == 303
    assert c.get("/account").status_code == 200
    assert not list_users(users)[0].must_change


def test_change_password_then_sign_in_with_the_new_one(
        env: tuple[Flask, MemorySink], users: Path) -> None:
    app, sink = env
    c = app.test_client()
    login(c, "zora", PW)
    r = _change(c, PW, NEW)
    assert r.status_code == 303 and r.headers["Location"] == "/account?password=changed"
    assert list_users(users)[0].password_hash.startswith("$argon2id$")
    assert login(app.test_client(), "zora", PW).status_code == 401
    assert login(app.test_client(), "zora", NEW).status_code == 303
    assert ("ChangePassword", None) in [(e["eventName"], e.get("errorCode"))
                                        for e in sink.records]
    assert NEW not in repr(sink.records) and PW not in repr(sink.records)


def test_change_password_lists_every_unmet_rule_at_once(
        env: tuple[Flask, MemorySink]) -> None:
    app, _ = env
    c = app.test_client()
    login(c, "zora", PW)
    r = _change(c, PW, "zora1", "zora2")
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    for sentence in ("Use at least 8 characters", "Do not use your name",
                     "The two new passwords differ"):
        assert sentence in page


@pytest.mark.parametrize(("new", "sentence"), [
    pytest.param("password1", "list of common or breached passwords", id="blocklist"),
    pytest.param("foster-lantern-9", "Do not use your name", id="context name"),
    pytest.param("127-lantern-orbit", None, id="issuer digits are not context words"),
])
def test_change_password_rules_in_words(env: tuple[Flask, MemorySink], new: str,
                                        sentence: str | None) -> None:
    app, _ = env
    c = app.test_client()
    login(c, "zora", PW)
    r = _change(c, PW, new)
    if sentence is None:
        assert r.status_code == 303
    else:
        assert r.status_code == 400 and sentence in r.get_data(as_text=True)


def test_change_password_needs_the_right_current_password(
        env: tuple[Flask, MemorySink], users: Path) -> None:
    app, sink = env
    c = app.test_client()
    login(c, "zora", PW)
    before = list_users(users)[0].password_hash
    r = _change(c, "not-" + PW, NEW)
    assert r.status_code == 400 and "current password is not right" in r.get_data(as_text=True)
    assert list_users(users)[0].password_hash == before
    assert sink.records[-1]["errorCode"] == "FailedAuthentication"


def test_change_password_requires_csrf_and_a_session(env: tuple[Flask, MemorySink]) -> None:
    app, _ = env
    anonymous = app.test_client().get("/account/password")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    c = app.test_client()
    login(c, "zora", PW)
    r = c.post("/account/password", data={"current_password": PW, "new_password": NEW,
                                          "confirm_password": NEW})
    assert r.status_code == 400


def test_strength_meter_endpoint(env: tuple[Flask, MemorySink]) -> None:
    app, _ = env
    c = app.test_client()
    login(c, "zora", PW)
    token = csrf(c, "/account/password")
    weak = c.post("/account/password/check", data={"csrf_token": token,
                                                   "new_password": "password"}).get_json()
    strong = c.post("/account/password/check", data={"csrf_token": token,
                                                     "new_password": NEW}).get_json()
    assert weak["score"] == 0 and weak["unmet"]
    assert strong["score"] >= 3 and strong["unmet"] == []
    assert c.post("/account/password/check", data={"new_password": NEW}).status_code == 403


def test_expiry_warning_after_sign_in_and_expired_means_must_change(
        tmp_path: Path, demo_keys_dir: Path, users: Path) -> None:
    app, _ = _app(tmp_path, demo_keys_dir, users, passwords={"max_age_days": 90})
    _edit(users, password_changed_at=(datetime.now(UTC) - timedelta(days=85)).isoformat())
    c = app.test_client()
    login(c, "zora", PW)
    assert "Your password expires in 5 days" in c.get("/account").get_data(as_text=True)
    _edit(users, password_changed_at=(datetime.now(UTC) - timedelta(days=91)).isoformat())
    c = app.test_client()
    login(c, "zora", PW)
    assert c.get("/account").headers["Location"] == "/account/password"


NOW = 10_000_000.0


def _identity(**status: Any) -> Identity:
    return Identity("zora", "z", status=AccountStatus(**status))


@pytest.mark.parametrize(("status", "max_age", "must_change", "warning"), [
    pytest.param({}, None, False, None, id="nothing to say"),
    pytest.param({"must_change": True}, None, True, None, id="must change"),
    pytest.param({"expires_in": 86400 * 5}, None, False, "your password expires in 5 days",
                 id="directory expiry warning"),
    pytest.param({"expires_in": 3600}, None, False, "your password expires in 1 day",
                 id="expiry warning under a day"),
    pytest.param({"grace_logins": 2}, None, False,
                 "your password has expired: 2 more sign-ins are allowed before you must "
                 "change it", id="grace logins"),
    pytest.param({"changed_at": 0.0}, None, False, None, id="no max age by default"),
    pytest.param({"changed_at": 0.0}, 30, True, None, id="older than max age"),
    pytest.param({"changed_at": NOW - 86400 * 10}, 30, False, None,
                 id="before the warning window"),
    pytest.param({"changed_at": NOW - 86400 * 20}, 30, False,
                 "your password expires in 10 days", id="inside the warning window"),
])
def test_account_notice(status: dict[str, Any], max_age: int | None, must_change: bool,
                        warning: str | None) -> None:
    notice = assess(_identity(**status), PasswordPolicyConfig(max_age_days=max_age),
                    NOW)
    assert notice.must_change is must_change and notice.warning() == warning


@pytest.mark.parametrize(("attrs", "refusal", "must_change"), [
    pytest.param({}, None, False, id="plain entry"),
    pytest.param({"pwdAccountLockedTime": "20260101000000Z"}, "AccountLocked", False,
                 id="ppolicy locked"),
    pytest.param({"pwdAccountLockedTime": "000001010000Z"}, "AccountDisabled", False,
                 id="ppolicy locked by an administrator is disabled"),
    pytest.param({"pwdReset": "TRUE"}, None, True, id="ppolicy pwdReset must change"),
    pytest.param({"userAccountControl": "512"}, None, False, id="ad normal account"),
    pytest.param({"userAccountControl": "514"}, "AccountDisabled", False,
                 id="ad ACCOUNTDISABLE"),
    pytest.param({"userAccountControl": str(512 | 0x10)}, "AccountLocked", False,
                 id="ad LOCKOUT"),
    pytest.param({"userAccountControl": str(512 | 0x800000)}, "PasswordExpired", False,
                 id="ad PASSWORD_EXPIRED"),
    pytest.param({"userAccountControl": "512", "pwdLastSet": "0"}, None, True,
                 id="ad pwdLastSet 0 must change"),
    pytest.param({"userAccountControl": "x"}, None, False, id="ad malformed flags ignored"),
])
def test_directory_account_state_mapping(attrs: dict[str, str], refusal: str | None,
                                         must_change: bool) -> None:
    assert ls.refusal(attrs.get) == refusal
    assert ls.status(attrs.get).must_change is must_change


@pytest.mark.parametrize(("message", "reason"), [
    pytest.param("80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, "
                 "data 533, v4563", "AccountDisabled", id="ad bind disabled"),
    pytest.param("… AcceptSecurityContext error, data 775, v4563", "AccountLocked",
                 id="ad bind locked"),
    pytest.param("… AcceptSecurityContext error, data 532, v4563", "PasswordExpired",
                 id="ad bind expired"),
    pytest.param("… AcceptSecurityContext error, data 773, v4563", "PasswordMustChange",
                 id="ad bind must change"),
    pytest.param("… AcceptSecurityContext error, data 52e, v4563", None,
                 id="ad bind wrong password"),
    pytest.param(None, None, id="no message"),
])
def test_active_directory_bind_sub_codes(message: str | None, reason: str | None) -> None:
    assert ls.reason_from_bind_message(message) == reason


def test_active_directory_password_change_is_a_quoted_utf16_delete_and_add() -> None:
    changes = ad_password_change("old-ü", "new")
    (op_del, [old]), (op_add, [new]) = changes["unicodePwd"]
    assert old == '"old-ü"'.encode("utf-16-le") and new == '"new"'.encode("utf-16-le")
    assert (op_del, op_add) == ("MODIFY_DELETE", "MODIFY_ADD")
