"""Scripted browser steps: ``next_login`` (with its consent answer) and the ``any_user`` mode;
both exist only in a kit app, never in an app built from a config file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from idp.errors import ConfigError
from idp.login.csrf import CSRF_COOKIE, csrf_token
from idp.testing import IdpServer, KitError
from tests.fixtures.servers import free_port, wait_for_port
from tests.helpers import config, make_app
from tests.helpers import csrf as page_csrf

AUTHORIZE = {"client_id": "demo-web", "redirect_uri": "http://127.0.0.1:8400/callback",
             "response_type": "code", "scope": "openid profile", "state": "st-1"}


def _callback(idp: IdpServer) -> dict[str, list[str]]:
    """Walk the authorization request like a browser (redirects, continue pages) up to the
    redirect URI; its query."""
    s = requests.Session()
    resp = s.get(idp.url + "/oauth2/authorize", params=AUTHORIZE, allow_redirects=False,
                 timeout=5)
    for _ in range(10):
        target = resp.headers.get("Location")
        if target is None:
            m = re.search(r'(http://127\.0\.0\.1:8400/callback\?[^"\'<\s]+)', resp.text)
            assert m, resp.text[:500]
            target = m.group(1).replace("&amp;", "&")
        if target.startswith("http://127.0.0.1:8400/callback"):
            return parse_qs(urlsplit(target).query)
        resp = s.get(idp.url + target if target.startswith("/") else target,
                     allow_redirects=False, timeout=5)
    raise AssertionError("no redirect to the client")


def test_next_login_signs_in_on_the_next_visit_without_typing(idp_server: IdpServer) -> None:
    idp_server.next_login("bob")
    page = requests.get(idp_server.url + "/login?next=/account", timeout=5)
    assert page.status_code == 200 and "bob" in page.text and "Sign in" not in page.text
    assert page.history and page.history[0].status_code == 303
    [event] = [r for r in idp_server.audit.records if r.get("eventName") == "Login"]
    assert event["additionalEventData"]["scripted"] == "next_login"


def test_next_login_is_used_once(idp_server: IdpServer) -> None:
    idp_server.next_login("bob")
    requests.get(idp_server.url + "/login", timeout=5)
    second = requests.get(idp_server.url + "/login", timeout=5)
    assert 'name="password"' in second.text


def test_next_login_with_consent_allow_completes_the_oidc_flow(idp_server: IdpServer) -> None:
    idp_server.next_login("alice", consent="allow")
    query = _callback(idp_server)
    assert query["state"] == ["st-1"] and query["code"]


def test_next_login_with_consent_deny_returns_access_denied(idp_server: IdpServer) -> None:
    idp_server.next_login("carol", consent="deny")
    query = _callback(idp_server)
    assert query["error"] == ["access_denied"] and "code" not in query


def test_next_login_refuses_unknown_users_and_answers(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="no user `mallory`"):
        idp_server.next_login("mallory")
    with pytest.raises(KitError, match="consent must be"):
        idp_server.next_login("bob", consent="maybe")  # type: ignore[arg-type]


def test_reset_drops_a_pending_scripted_login(idp_server: IdpServer) -> None:
    idp_server.next_login("bob")
    idp_server.reset()
    assert 'name="password"' in requests.get(idp_server.url + "/login", timeout=5).text


def _post_login(url: str, secret: bytes, username: str, password: str = "") -> int:
    s = requests.Session()
    s.cookies.set(CSRF_COOKIE, "binding-1", domain="127.0.0.1", path="/")
    return s.post(url + "/login", allow_redirects=False, timeout=5, data={
        "username": username, "password": password,
        "csrf_token": csrf_token(secret, "binding-1")}).status_code


def test_any_user_mode_takes_any_known_username_without_password() -> None:
    with IdpServer(any_user=True) as idp:
        assert _post_login(idp.url, idp.components.secret, "carol") == 303
        assert _post_login(idp.url, idp.components.secret, "nobody") == 401


def test_any_user_mode_still_checks_csrf() -> None:
    with IdpServer(any_user=True) as idp:
        resp = requests.post(idp.url + "/login", data={"username": "carol"},
                             allow_redirects=False, timeout=5)
        assert resp.status_code == 400


def test_any_user_mode_is_off_by_default(idp_server: IdpServer) -> None:
    assert not idp_server.any_user
    assert _post_login(idp_server.url, idp_server.components.secret, "carol") == 401


@pytest.mark.parametrize("section", [
    pytest.param({"login": {"any_user": True}}, id="login-section-has-no-any-user"),
    pytest.param({"testing": {"any_user": True}}, id="no-testing-section"),
    pytest.param({"login": {"next_login": "alice"}}, id="login-section-has-no-next-login"),
])
def test_a_config_file_cannot_enable_the_kit_modes(tmp_path: Path, section: dict[str, object]
                                                   ) -> None:
    with pytest.raises(ConfigError, match="Extra inputs are not permitted"):
        config(tmp_path, tmp_path / "keys", **section)


def _served_app(tmp_path: Path) -> Flask:
    app, _, _ = make_app(config(tmp_path, tmp_path / "keys"), demo=True)
    return app


def test_an_app_built_from_a_config_has_no_kit_hook(tmp_path: Path) -> None:
    """``create_app`` (what ``idp serve`` and ``idp demo`` run) signs no one in without a
    password and never shows a scripted login."""
    app = _served_app(tmp_path)
    assert "idp_testing_script" not in app.extensions
    client = app.test_client()
    token = page_csrf(client, "/login")
    resp = client.post("/login", data={"username": "carol", "password": "",
                                       "csrf_token": token})
    assert resp.status_code == 401
    assert 'name="password"' in client.get("/login").get_data(as_text=True)


def test_idp_demo_any_user_flag_signs_in_a_demo_username_without_password(
        tmp_path: Path) -> None:
    port = free_port()
    idp = str(Path(sys.executable).parent / "idp")
    proc = subprocess.Popen([idp, "demo", "--any-user", "--port", str(port), "--keys-dir",
                             str(tmp_path / "keys")], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        s = requests.Session()
        url = f"http://127.0.0.1:{port}"
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          s.get(url + "/login", timeout=5).text)
        assert token
        resp = s.post(url + "/login", data={"username": "carol", "csrf_token": token[1]},
                      allow_redirects=False, timeout=5)
        assert resp.status_code == 303
        assert "carol" in s.get(url + "/account", timeout=5).text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert b"any-user mode" in out


def test_idp_serve_has_no_any_user_option() -> None:
    idp = str(Path(sys.executable).parent / "idp")
    out = subprocess.run([idp, "serve", "--config", "x.yaml", "--any-user"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "No such option '--any-user'" in out.stderr
