"""SP-initiated SSO in real headless Chromium: python3-saml SP → IdP login form → the IdP's
auto-submitted POST form (its own CSP and static script) → the SP validates the response."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.servers import CHROMIUM_ARGS, require_binary
from tests.saml.conftest import Federation


@pytest.mark.browser
def test_alice_signs_in_to_onelogin_sp_in_chromium(federation: Federation) -> None:
    from playwright.sync_api import sync_playwright

    chromium = require_binary("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{federation.onelogin.base}/login?relay=/chromium")
            assert "/login" in page.url and page.url.startswith(federation.idp.url)
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "alice-password")
            with page.expect_navigation(url=f"{federation.onelogin.base}/acs", timeout=15000):
                page.click("button[type=submit]")
            page.wait_for_load_state()
            body = json.loads(page.inner_text("body"))
        finally:
            browser.close()
    assert body["relay_state"] == "/chromium"
    roles = body["attributes"]["https://aws.amazon.com/SAML/Attributes/Role"]
    assert any(r.startswith("arn:aws:iam::111122223333:role/Admin,") for r in roles)
