"""The federation page in real headless Chromium: sign in, IdP-initiated SSO to the built-in
AWS-style SP, pick a role on /federation/saml, get credentials ready to paste."""

from __future__ import annotations

import pytest

from tests.fixtures.live import LiveIdp
from tests.fixtures.servers import CHROMIUM_ARGS, require_binary


@pytest.mark.browser
def test_federation_page_in_chromium(demo_idp: LiveIdp) -> None:
    from playwright.sync_api import sync_playwright

    chromium = require_binary("chromium")
    url = demo_idp.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/saml/idp-initiated?sp=urn:amazon:webservices")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "alice-password")
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/federation/saml", timeout=20000)
            roles = page.locator("#roles input[name=role]")
            values = {roles.nth(i).get_attribute("value") for i in range(roles.count())}
            assert values == {f"arn:aws:iam::111122223333:role/{r}"
                              for r in ("Admin", "Developer", "ReadOnly")}
            page.check("input[value='arn:aws:iam::111122223333:role/Developer']")
            page.click("#assume")
            page.wait_for_selector("#exports", timeout=20000)
            exports = page.inner_text("#exports")
            assert "export AWS_ACCESS_KEY_ID=ASIA" in exports
            assert "export AWS_SESSION_TOKEN=v1." in exports
            assert "[default]" in page.inner_text("#credentials-file")
            assert page.inner_text("#arn").startswith(
                "arn:aws:sts::111122223333:assumed-role/Developer/")
        finally:
            browser.close()
