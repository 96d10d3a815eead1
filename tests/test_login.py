"""Browser login: the form, sessions, CSRF, open redirects, throttling, bad input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.app import Components
from idp.audit import MemorySink
from idp.config import FileDirectoryConfig
from idp.demo import USERS_FILE
from idp.directory.file import FileDirectory
from tests.helpers import CountingDirectory, config, csrf, login, make_app

GENERIC_ERROR = "Invalid username or password."


def client_at(app: Flask, ip: str) -> FlaskClient:
    """A browser at another address."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


@pytest.fixture
def env(tmp_path: Path, demo_keys_dir: Path) -> Iterator[tuple[Flask, Components, MemorySink,
                                                                CountingDirectory]]:
    directory = CountingDirectory(FileDirectory.from_config(FileDirectoryConfig(path=USERS_FILE)))
    cfg = config(tmp_path, demo_keys_dir,
                 login={"account_failures_per_hour": 5, "device_failures_per_hour": 3,
                        "ip_failures_per_window": 8})
    app, comps, sink = make_app(cfg, directory=directory)
    yield app, comps, sink, directory
    comps.close()


@pytest.fixture
def client(env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> FlaskClient:
    return env[0].test_client()


def test_login_success_redirects_to_account_with_groups(client: FlaskClient) -> None:
    r = login(client, "alice", "alice-password")
    assert r.status_code == 303 and r.headers["Location"] == "/account"
    page = client.get("/account").get_data(as_text=True)
    assert "alice" in page and "admins" in page and "engineering" in page


def test_session_cookie_is_httponly_samesite_lax_and_not_secure_over_http(
        client: FlaskClient) -> None:
    r = login(client, "alice", "alice-password")
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("idp_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_and_hsts_sent_under_tls(tmp_path: Path,
                                                           demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, issuer="https://idp.example.org"))
    c = app.test_client()
    r = login(c, "alice", "alice-password")
    cookie = next(x for x in r.headers.getlist("Set-Cookie") if x.startswith("idp_session="))
    assert "Secure" in cookie
    assert "max-age=" in r.headers["Strict-Transport-Security"]
    comps.close()


def test_session_id_rotated_at_login_and_old_session_ended(client: FlaskClient) -> None:
    first = login(client, "alice", "alice-password")
    sid1 = first.headers["Set-Cookie"].split("=", 1)[1].split(";")[0]
    second = login(client, "bob", "bob-password", reauth="1")
    sid2 = next(c for c in second.headers.getlist("Set-Cookie")
                if c.startswith("idp_session=")).split("=", 1)[1].split(";")[0]
    assert sid1 != sid2
    stale = client.application.test_client()
    stale.set_cookie("idp_session", sid1)
    assert stale.get("/account").status_code == 302


def test_security_headers_forbid_framing_and_sniffing(client: FlaskClient) -> None:
    r = client.get("/login")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in r.headers  # only under TLS


@pytest.mark.parametrize(("username", "password"), [
    pytest.param("alice", "wrong-password", id="wrong-password"),
    pytest.param("nobody", "alice-password", id="unknown-user-same-answer"),
    pytest.param("ALICE ", "alice-password", id="trailing-space-username"),
    pytest.param("*)(uid=*))(|(uid=*", "x", id="ldap-injection-or-clause"),
    pytest.param("admin)(&)", "x", id="ldap-injection-absolute-true"),
    pytest.param("*", "alice-password", id="ldap-injection-wildcard"),
    pytest.param("alice\x00", "alice-password", id="nul-byte-in-username"),
    pytest.param("a" * 5000, "x", id="over-long-username"),
    pytest.param("alice", "x" * 5000, id="over-long-password"),
])
def test_bad_credentials_get_one_generic_answer(client: FlaskClient, username: str,
                                                 password: str) -> None:
    r = login(client, username, password)
    body = r.get_data(as_text=True)
    assert r.status_code == 401
    assert GENERIC_ERROR in body
    assert "idp_session=" not in " ".join(r.headers.getlist("Set-Cookie"))


def test_unknown_user_and_wrong_password_pages_are_identical(client: FlaskClient) -> None:
    a = login(client, "alice", "nope").get_data(as_text=True)
    b = login(client, "mallory", "nope").get_data(as_text=True)

    def strip(page: str) -> str:  # the only differences allowed: echoed username, csrf token
        import re
        return re.sub(r'value="[^"]*"', 'value=""', page)

    assert strip(a) == strip(b)


def test_empty_password_refused_before_any_directory_call(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, _, directory = env
    r = login(app.test_client(), "alice", "")
    assert r.status_code == 401 and directory.calls == 0


def test_injection_usernames_never_reach_directory_with_control_chars(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, _, directory = env
    login(app.test_client(), "alice\x00)(uid=*", "x")
    assert directory.calls == 0


@pytest.mark.parametrize("token", [
    pytest.param(None, id="missing-csrf-token"),
    pytest.param("forged", id="wrong-csrf-token"),
    pytest.param("", id="empty-csrf-token"),
])
def test_login_without_valid_csrf_token_is_refused(
        env: tuple[Flask, Components, MemorySink, CountingDirectory], token: str | None) -> None:
    app, _, _, directory = env
    c = app.test_client()
    csrf(c)  # the browser has its CSRF cookie
    data = {"username": "alice", "password": "alice-password"}
    if token is not None:
        data["csrf_token"] = token
    r = c.post("/login", data=data)
    assert r.status_code == 400 and directory.calls == 0
    assert "idp_session=" not in " ".join(r.headers.getlist("Set-Cookie"))


def test_csrf_token_from_another_browser_is_refused(client: FlaskClient) -> None:
    other = client.application.test_client()
    token = csrf(other)
    csrf(client)
    r = client.post("/login", data={"username": "alice", "password": "alice-password",
                                     "csrf_token": token})
    assert r.status_code == 400


@pytest.mark.parametrize("target", [
    pytest.param("//evil.example", id="scheme-relative"),
    pytest.param("https:evil", id="scheme-without-slashes"),
    pytest.param("https://evil.example/", id="absolute-url"),
    pytest.param("/\\evil.example", id="backslash-authority"),
    pytest.param("javascript:alert(1)", id="javascript-url"),
    pytest.param("/%0d%0aSet-Cookie:x", id="crlf-encoded-is-local"),
    pytest.param(" //evil.example", id="leading-space"),
])
def test_open_redirect_next_values_fall_back_to_account(client: FlaskClient,
                                                        target: str) -> None:
    r = login(client, "alice", "alice-password", next=target)
    assert r.status_code == 303
    location = r.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "evil" not in location.split("?")[0] or location.startswith("/%0d")


def test_local_next_path_is_followed(client: FlaskClient) -> None:
    r = login(client, "alice", "alice-password", next="/saml/sso?x=1")
    assert r.headers["Location"] == "/saml/sso?x=1"


def test_logout_requires_csrf_and_ends_session(client: FlaskClient) -> None:
    login(client, "alice", "alice-password")
    assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200
    token = csrf(client, "/account")
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert client.get("/account").status_code == 302


def test_sign_out_says_so_on_the_login_page(client: FlaskClient) -> None:
    """After signing out the person lands on the sign-in page, which says they are out (and a
    plain visit to it says nothing of the kind)."""
    assert "login-notice" not in client.get("/login").get_data(as_text=True)
    login(client, "alice", "alice-password")
    r = client.post("/logout", data={"csrf_token": csrf(client, "/account")})
    assert r.status_code == 303 and r.headers["Location"] == "/login?signed_out=1"
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="login-notice"' in page and "You are signed out." in page


def test_account_page_without_session_redirects_to_login(client: FlaskClient) -> None:
    r = client.get("/account")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=%2Faccount")


def test_account_lockout_after_limit_answers_429_for_unknown_and_known_users(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, sink, directory = env
    for user, ip in (("alice", "192.0.2.1"), ("ghost", "192.0.2.2")):
        c = client_at(app, ip)
        for _ in range(5):
            assert login(c, user, "wrong").status_code == 401
        calls = directory.calls
        r = login(c, user, "alice-password" if user == "alice" else "x")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        minutes = -(-int(r.headers["Retry-After"]) // 60)
        unit = "minute" if minutes == 1 else "minutes"
        assert f"Try again in {minutes} {unit}." in r.get_data(as_text=True), \
            "the lockout says how long"
        assert directory.calls == calls  # throttled before the directory is asked
    assert sum(1 for e in sink.records if e["eventName"] == "LoginLockout") == 2


def test_trusted_device_still_signs_in_while_account_locked_for_strangers(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, _, _ = env
    victim = app.test_client()
    assert login(victim, "alice", "alice-password").status_code == 303
    victim.post("/logout", data={"csrf_token": csrf(victim, "/account")})
    attacker = client_at(app, "203.0.113.9")
    for _ in range(5):
        login(attacker, "alice", "guess")
    assert login(attacker, "alice", "alice-password").status_code == 429
    assert login(victim, "alice", "alice-password").status_code == 303


def test_device_budget_is_small_and_separate(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, _, _ = env
    c = app.test_client()
    assert login(c, "alice", "alice-password").status_code == 303
    for _ in range(3):
        assert login(c, "alice", "wrong", reauth="1").status_code == 401
    assert login(c, "alice", "alice-password", reauth="1").status_code == 429


def test_ip_throttle_caps_spraying_across_usernames(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, _, _ = env
    c = client_at(app, "198.51.100.7")
    for i in range(8):
        assert login(c, f"user{i}", "spray").status_code == 401
    assert login(c, "bob", "bob-password").status_code == 429
    other = client_at(app, "198.51.100.8")
    assert login(other, "bob", "bob-password").status_code == 303


def test_passwords_never_appear_in_audit_records(
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    app, _, sink, _ = env
    c = app.test_client()
    login(c, "alice", "s3cret-typo-Zq9")
    login(c, "alice", "alice-password")
    text = repr(sink.records)
    assert "s3cret-typo-Zq9" not in text and "alice-password" not in text
    names = [(e["eventName"], e.get("errorCode")) for e in sink.records]
    assert ("Login", "FailedAuthentication") in names and ("Login", None) in names
    ok = next(e for e in sink.records if e["eventName"] == "Login" and "errorCode" not in e)
    for field in ("eventTime", "userIdentity", "sourceIPAddress", "userAgent", "requestID"):
        assert field in ok


def test_over_large_form_body_gets_413_page_not_500(client: FlaskClient) -> None:
    token = csrf(client)
    r = client.post("/login", data={"username": "alice", "password": "x" * 400_000,
                                    "csrf_token": token})
    assert r.status_code == 413
    assert "Traceback" not in r.get_data(as_text=True)


def test_unknown_path_is_a_404_page(client: FlaskClient) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "Error 404" in r.get_data(as_text=True)


@pytest.mark.parametrize(("user", "roles"), [
    pytest.param("alice", {"Admin", "Developer", "ReadOnly"}, id="admins-and-engineering"),
    pytest.param("carol", {"ReadOnly"}, id="no-group-gets-readonly-only"),
])
def test_account_page_lists_mapped_roles(tmp_path: Path, demo_keys_dir: Path, user: str,
                                         roles: set[str]) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir), demo=True)
    c = app.test_client()
    login(c, user, f"{user}-password")
    page = c.get("/account").get_data(as_text=True)
    shown = set(re.findall(r"arn:aws:iam::111122223333:role/(\w+)", page))
    assert shown == roles
    comps.close()


def test_trusted_proxy_forwarded_address_is_the_client_address(tmp_path: Path,
                                                               demo_keys_dir: Path) -> None:
    app, comps, sink = make_app(config(tmp_path, demo_keys_dir, web={"trusted_proxies": 1}))
    c = app.test_client()
    token = csrf(c, "/login?reauth=1")
    c.post("/login", data={"username": "alice", "password": "nope", "csrf_token": token},
           headers={"X-Forwarded-For": "198.51.100.23"})
    assert sink.records[-1]["sourceIPAddress"] == "198.51.100.23"
    comps.close()


def test_forwarded_address_is_ignored_without_trusted_proxies(client: FlaskClient,
        env: tuple[Flask, Components, MemorySink, CountingDirectory]) -> None:
    token = csrf(client, "/login?reauth=1")
    client.post("/login", data={"username": "alice", "password": "nope", "csrf_token": token},
                headers={"X-Forwarded-For": "198.51.100.23"})
    assert env[2].records[-1]["sourceIPAddress"] == "127.0.0.1"
