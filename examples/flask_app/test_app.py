"""The example app's own tests, written only against ``idp.testing``: a real browser signs in
through the IdP with no typing (``next_login``), SAML responses are minted headlessly, and
failure presets check that the app refuses what it must."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from examples.flask_app.conftest import APP
from idp.testing import IdpServer

SP = APP + "/saml/metadata"
USERNAME = "urn:oid:0.9.2342.19200300.100.1.1"


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium", path="/usr/bin")
    if chromium is None:
        pytest.fail("chromium is not installed (the project's ./dev test installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.mark.browser
def test_oidc_sign_in_in_a_browser_with_no_typing(idp_server: IdpServer, app_url: str,
                                                  page: Any) -> None:
    idp_server.next_login("alice", consent="allow")
    page.goto(app_url + "/login/oidc")
    page.wait_for_selector("#user")
    assert page.inner_text("#user") == "alice" and "via oidc" in page.inner_text("#status")
    [token] = idp_server.requests("token")
    assert token.parsed["grant_type"] == "authorization_code"
    assert idp_server.requests("authorize")[0].parsed["code_challenge_method"] == "S256"


@pytest.mark.browser
def test_oidc_consent_denied_is_shown_as_refused(idp_server: IdpServer, app_url: str,
                                                 page: Any) -> None:
    idp_server.next_login("bob", consent="deny")
    page.goto(app_url + "/login/oidc")
    page.wait_for_selector("#status")
    assert "refused: access_denied" in page.inner_text("#status")


@pytest.mark.browser
def test_saml_sign_in_in_a_browser_asks_for_a_fresh_login(idp_server: IdpServer, app_url: str,
                                                          page: Any) -> None:
    idp_server.next_login("bob")
    page.goto(app_url + "/login/saml")
    page.wait_for_selector("#user")
    assert page.inner_text("#user") == "bob" and "via saml" in page.inner_text("#status")
    request = idp_server.take_request("saml_sso")
    assert request.parsed["force_authn"] is True
    assert request.parsed["issuer"] == SP


def _start_saml(session: requests.Session, app_url: str, idp_server: IdpServer) -> str:
    """Begin a SAML login at the app; the ID of the AuthnRequest it sent."""
    session.get(session.get(app_url + "/login/saml", allow_redirects=False, timeout=5)
                .headers["Location"], allow_redirects=False, timeout=5)
    return str(idp_server.requests("saml_sso")[-1].parsed["id"])


def test_headless_saml_response_signs_the_person_in(idp_server: IdpServer,
                                                    app_url: str) -> None:
    s = requests.Session()
    request_id = _start_saml(s, app_url, idp_server)
    post = idp_server.saml_response(SP, "carol", in_response_to=request_id)
    page = s.post(post.url, data=post.data, timeout=5)
    assert 'id="user">carol<' in page.text


@pytest.mark.parametrize("preset", ["expired", "wrong_audience", "wrong_in_response_to",
                                    "missing_in_response_to", "unsigned_response", "xsw3",
                                    "unknown_key", "status_authn_failed"])
def test_the_app_refuses_saml_preset(idp_server: IdpServer, app_url: str, preset: str) -> None:
    s = requests.Session()
    request_id = _start_saml(s, app_url, idp_server)
    post = idp_server.saml_response(SP, "carol", in_response_to=request_id, preset=preset)
    page = s.post(post.url, data=post.data, timeout=5)
    assert page.status_code == 403 and "refused" in page.text
    assert "signed out" in s.get(app_url + "/", timeout=5).text
