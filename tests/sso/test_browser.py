"""``aws sso login``'s browser step in headless Chromium: the person opens
``verificationUriComplete``, signs in and approves on the ``/device`` page; then the access
portal page gives credentials for a role."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.fixtures.live import LiveIdp
from tests.sso import kit

pytestmark = pytest.mark.browser




def test_sso_device_approval_and_access_portal_in_chromium(demo_idp: LiveIdp,
                                                           chromium: Browser) -> None:
    url = demo_idp.url
    oidc = kit.client("sso-oidc", url)
    reg = kit.register(oidc)
    start = oidc.start_device_authorization(clientId=reg["clientId"],
                                            clientSecret=reg["clientSecret"],
                                            startUrl=url + "/start")
    context = chromium.new_context()
    page = context.new_page()
    page.goto(start["verificationUriComplete"])
    page.fill("#username", "alice")
    page.fill("#password", "alice-password")
    page.click("#sign-in")
    page.wait_for_selector("#continue")
    assert page.input_value("#user_code") == start["userCode"]
    page.click("#continue")
    page.wait_for_selector("#approve")
    assert page.inner_text("#client-name") == "botocore-test"
    assert "sso:account:access" in page.inner_text("#scopes")
    page.click("#approve")
    page.wait_for_selector("#device-done")
    token = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                              grantType=kit.DEVICE, deviceCode=start["deviceCode"])
    accounts = kit.client("sso", url).list_accounts(accessToken=token["accessToken"])
    assert [a["accountId"] for a in accounts["accountList"]] == [kit.ACCT]

    page.goto(f"{url}/account")
    page.click("#access-portal")
    page.wait_for_selector(f"#role-{kit.ACCT}-Developer")
    page.click(f"#role-{kit.ACCT}-Developer .get-credentials")
    page.wait_for_selector("#exports")
    assert "AWS_ACCESS_KEY_ID=ASIA" in page.inner_text("#exports")
    assert page.inner_text("#creds-role") == f"{kit.ACCT}/Developer"
    context.close()
