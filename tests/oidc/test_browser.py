"""Real headless Chromium through the login form, the consent page and the device page, with
requests-oauthlib as the relying party (the redirect URI is answered by a Playwright route)."""

from __future__ import annotations

import contextlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, Request, Route
from playwright.sync_api import Error as PlaywrightError
from requests_oauthlib import OAuth2Session

from tests.fixtures.live import LiveIdp
from tests.oidc import rp

pytestmark = pytest.mark.browser




class Callback:
    """Answers the RP's redirect URI inside the browser and remembers what arrived.  A
    cross-origin 302 is not routed by Playwright (nothing listens on the RP's port), so
    requests are also recorded as the browser sends them."""

    def __init__(self, page: Page, prefix: str) -> None:
        self.urls: list[str] = []
        self.prefix = prefix
        page.route(prefix + "**", self._handle)
        page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if request.url.startswith(self.prefix) and request.url not in self.urls:
            self.urls.append(request.url)

    def _handle(self, route: Route) -> None:
        self._seen(route.request)
        route.fulfill(status=200, content_type="text/plain", body="callback reached")


def test_demo_web_in_chromium_login_consent_tokens_refresh_revoke_logout(
        demo_idp: LiveIdp, chromium: Browser) -> None:
    base = demo_idp.url
    client, secret, redirect_uri = rp.WEB
    context = chromium.new_context()
    page = context.new_page()
    callback = Callback(page, "http://127.0.0.1:8400/")
    nonce = secrets.token_urlsafe(16)
    session = OAuth2Session(client, redirect_uri=redirect_uri, scope=rp.SCOPE, pkce="S256")
    url, state = session.authorization_url(f"{base}/oauth2/authorize", nonce=nonce)

    page.goto(url)
    page.fill("#username", "alice")
    page.fill("#password", "alice-password")
    page.click("#sign-in")
    page.wait_for_selector("#allow")
    assert page.inner_text("#client-name") == "Demo Web App"
    assert "roles" in page.inner_text("#scopes")
    page.click("#allow")
    page.wait_for_url(redirect_uri + "**", timeout=10000)
    assert len(callback.urls) == 1
    query = parse_qs(urlsplit(callback.urls[0]).query)
    assert query["state"] == [state] and query["iss"] == [base]

    token = session.fetch_token(f"{base}/oauth2/token", authorization_response=callback.urls[0],
                                client_secret=secret)
    idt = rp.verify_id_token(base, token["id_token"], client, nonce, token["access_token"])
    assert idt.claims["preferred_username"] == "alice"
    assert session.get(f"{base}/oauth2/userinfo", timeout=5).json()["sub"] == idt.claims["sub"]
    new = session.refresh_token(f"{base}/oauth2/token", auth=(client, secret))
    assert requests.post(f"{base}/oauth2/revoke", data={"token": new["refresh_token"]},
                         auth=(client, secret), timeout=5).status_code == 200
    assert session.get(f"{base}/oauth2/userinfo", timeout=5).status_code == 401

    # a second authorization in the same browser: consent is remembered, no page shown
    url2, _ = session.authorization_url(f"{base}/oauth2/authorize", nonce=nonce)
    with contextlib.suppress(PlaywrightError):  # the 302 goes to a port nobody listens on
        page.goto(url2)
    assert len(callback.urls) == 2 and "code=" in callback.urls[1]

    # RP-initiated logout ends the IdP session
    with contextlib.suppress(PlaywrightError):
        page.goto(f"{base}/oauth2/logout?id_token_hint={token['id_token']}"
                  "&post_logout_redirect_uri=http://127.0.0.1:8400/&state=s1")
    assert callback.urls[-1] == "http://127.0.0.1:8400/?state=s1"
    check = context.new_page()  # same cookies; the old page is busy with its error page
    check.goto(f"{base}/account")
    check.wait_for_selector("#sign-in")
    context.close()


def test_device_flow_approved_in_chromium(demo_idp: LiveIdp, chromium: Browser) -> None:
    base = demo_idp.url
    start = requests.post(f"{base}/oauth2/device_authorization", timeout=5,
                          data={"client_id": "demo-cli", "scope": "openid roles"}).json()
    context = chromium.new_context()
    page = context.new_page()
    page.goto(start["verification_uri_complete"])
    page.fill("#username", "bob")
    page.fill("#password", "bob-password")
    page.click("#sign-in")
    page.wait_for_selector("#continue")
    assert page.input_value("#user_code") == start["user_code"]
    page.click("#continue")
    page.wait_for_selector("#approve")
    assert page.inner_text("#user-code") == start["user_code"]
    page.click("#approve")
    page.wait_for_selector("#device-done")
    context.close()
    token = requests.post(f"{base}/oauth2/token", timeout=5, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": start["device_code"], "client_id": "demo-cli"}).json()
    idt = rp.verify_id_token(base, token["id_token"], "demo-cli", None, token["access_token"])
    assert "arn:aws:iam::111122223333:role/Developer" in idt.claims["roles"]
