"""Second factors in real headless Chromium: alice enrols an authenticator (the test reads the
secret from the page and computes codes), signs out and in with password + code, a replayed
and a wrong code refused; dave steps up on the federation page to take Operator."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from idp.demo import DEMO_TOTP_SECRET, demo_config
from idp.mfa import totp
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.browser
OPERATOR = "arn:aws:iam::111122223333:role/Operator"




@pytest.fixture
def step_up_idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """The demo, where only groups that require it are asked at sign-in (others step up)."""
    port = free_port()
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[tmp_path / "md"],
                         audit="none")
    config = config.model_copy(update={"mfa": config.mfa.model_copy(
        update={"sign_in": "required"})})
    with live_idp(config, demo=True, port=port) as idp:
        yield idp


def sign_in(page: Any, url: str, user: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#sign-in")


def test_alice_enrols_totp_then_signs_in_with_password_and_code(
        chromium: Any, demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    page = chromium.new_page()
    sign_in(page, url, "alice")
    page.wait_for_url(url + "/account")
    page.click("#account-mfa")
    page.click("#add-totp")
    assert page.locator("#totp-qr svg").count() == 1
    secret = page.inner_text("#totp-secret")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.fill("#name", "pixel")
    page.fill("#code", totp.code_at(secret, time.time()))
    page.click("#confirm-totp")
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.click("#done")
    assert "pixel" in page.content()
    page.goto(url + "/account")
    page.click("#sign-out")
    page.wait_for_url(url + "/login?signed_out=1")

    sign_in(page, url, "alice")
    page.wait_for_url(re.compile(r".*/login/mfa\?next=.*"))
    page.fill("#code", f"{(int(totp.code_at(secret, time.time())) + 1) % 10**6:06d}")
    page.click("#verify")
    assert page.inner_text("#mfa-error") == "That code is not valid."
    good = totp.code_at(secret, time.time() + totp.STEP)
    page.fill("#code", good)
    page.click("#verify")
    page.wait_for_url(url + "/account")
    assert "used in this session" in page.content()

    page.click("#sign-out")
    sign_in(page, url, "alice")
    page.wait_for_url(re.compile(r".*/login/mfa\?next=.*"))
    page.fill("#code", good)  # replayed
    page.click("#verify")
    assert page.inner_text("#mfa-error") == "That code is not valid."
    assert "/login/mfa" in page.url


def test_dave_steps_up_for_operator_on_the_federation_page(
        chromium: Any, step_up_idp: LiveIdp) -> None:
    url = step_up_idp.url
    page = chromium.new_page()
    sign_in(page, url, "dave")
    page.wait_for_url(url + "/account")  # the password alone
    page.goto(url + "/saml/idp-initiated?sp=urn:amazon:webservices")
    page.wait_for_url(url + "/federation/saml")
    page.check(f'input[value="{OPERATOR}"]')
    page.click("#assume")
    page.wait_for_url(re.compile(r".*/login/mfa\?next=.*"))
    assert "needs a second factor" in page.inner_text("#mfa-intro")
    page.fill("#code", totp.code_at(DEMO_TOTP_SECRET, time.time() + totp.STEP))
    page.click("#verify")
    page.wait_for_url(url + "/federation/saml")
    assert page.is_checked(f'input[value="{OPERATOR}"]')  # continues where it was
    page.click("#assume")
    exports = page.inner_text("#exports")
    creds = dict(re.findall(r"export (AWS_\w+)=(\S+)", exports))
    assert page.inner_text("#arn").endswith(":assumed-role/Operator/dave@example.org")
    decision = decide(url, Credentials(creds["AWS_ACCESS_KEY_ID"],
                                       creds["AWS_SECRET_ACCESS_KEY"],
                                       creds["AWS_SESSION_TOKEN"]), "ec2:TerminateInstances")
    assert decision["decision"] == "Allow", decision


def decide(url: str, creds: Credentials, action: str) -> dict[str, Any]:
    """The decision endpoint: Operator's policy denies TerminateInstances unless
    aws:MultiFactorAuthPresent (and a second factor at most an hour old)."""
    aws = AWSRequest(method="GET", url="http://ec2.example.org/")
    SigV4Auth(creds, "ec2", "us-east-1").add_auth(aws)
    body = {"request": {"method": "GET", "path": "/", "query": "",
                        "headers": dict(aws.headers.items()) | {"Host": "ec2.example.org"},
                        "body_b64": ""}, "action": action, "resource": "*"}
    auth = base64.b64encode(b"demo-service:demo-service-secret").decode()
    r = requests.post(url + "/sts/decide", data=json.dumps(body), timeout=10,
                      headers={"Content-Type": "application/json",
                               "Authorization": "Basic " + auth})
    return dict(r.json())
