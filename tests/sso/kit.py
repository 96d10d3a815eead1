"""Helpers of the SSO tests: boto3 clients of the two APIs on a live IdP, device-flow approval
through the ``/device`` page's forms, and the token cache file ``aws sso login`` writes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config

from tests.oidc import rp

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
ACCT = "111122223333"
ROLES = ("Admin", "Developer", "ReadOnly")
# DESIGN.md "The demo": the role mapping of the demo people
MAPPING = {"alice": {"Admin", "Developer", "ReadOnly"}, "bob": {"Developer", "ReadOnly"},
           "carol": {"ReadOnly"}}


def client(service: str, url: str) -> BaseClient:
    """An unsigned boto3 client of ``sso-oidc`` or ``sso`` at ``<url>/sso-oidc|sso-portal``."""
    path = "/sso-oidc" if service == "sso-oidc" else "/sso-portal"
    return boto3.client(service, endpoint_url=url + path, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))


def register(oidc: BaseClient, **extra: Any) -> dict[str, Any]:
    reg: dict[str, Any] = oidc.register_client(clientName="botocore-test", clientType="public",
                                               scopes=["sso:account:access"], **extra)
    return reg


def approve(url: str, user: str, user_code: str, decision: str = "approve") -> None:
    """The person signs in and approves the code on the ``/device`` page (its forms)."""
    browser = requests.Session()
    rp.login(browser, url, user, next_path="/device")
    page = browser.get(f"{url}/device", params={"user_code": user_code}, timeout=5)
    csrf = rp.form_value(rp._CSRF, page.text)
    confirm = browser.post(f"{url}/device", timeout=5,
                           data={"csrf_token": csrf, "user_code": user_code})
    assert 'value="approve"' in confirm.text, confirm.text[:500]
    done = browser.post(f"{url}/device", timeout=5, data={
        "csrf_token": csrf, "user_code": user_code, "decision": decision})
    assert 'id="device-done"' in done.text, done.text[:500]


def sign_in(url: str, user: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """RegisterClient → StartDeviceAuthorization → approval → CreateToken, as ``aws sso
    login`` does; the registration and the token."""
    oidc = client("sso-oidc", url)
    reg = register(oidc)
    start = oidc.start_device_authorization(clientId=reg["clientId"],
                                            clientSecret=reg["clientSecret"],
                                            startUrl=url + "/start")
    approve(url, user, start["userCode"])
    token: dict[str, Any] = oidc.create_token(
        clientId=reg["clientId"], clientSecret=reg["clientSecret"], grantType=DEVICE,
        deviceCode=start["deviceCode"])
    return reg, token


def cache_token(home: Path, session_name: str, url: str, reg: dict[str, Any],
                token: dict[str, Any], expires_in: int | None = None) -> Path:
    """Write ``~/.aws/sso/cache/<sha1(session name)>.json`` as ``aws sso login`` does (botocore
    ``SSOTokenLoader``/``SSOTokenProvider`` read these keys)."""
    now = datetime.now(UTC)

    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    body = {"startUrl": url + "/start", "region": "us-east-1",
            "accessToken": token["accessToken"],
            "expiresAt": iso(now + timedelta(seconds=expires_in or token["expiresIn"])),
            "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
            "registrationExpiresAt": iso(datetime.fromtimestamp(reg["clientSecretExpiresAt"],
                                                                UTC)),
            "refreshToken": token["refreshToken"]}
    path = home / ".aws" / "sso" / "cache" / \
        (hashlib.sha1(session_name.encode()).hexdigest() + ".json")  # noqa: S324 - botocore's
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))
    return path


def aws_config(url: str, *, services: bool) -> str:
    """``~/.aws/config`` for the demo: an ``sso-session`` and one profile per role, with the
    endpoints in a ``services`` section (or, ``services=False``, left to the environment)."""
    lines = ["[sso-session idp]", f"sso_start_url = {url}/start", "sso_region = us-east-1",
             "sso_registration_scopes = sso:account:access", ""]
    for profile, role in (("dev", "Developer"), ("admin", "Admin"), ("readonly", "ReadOnly")):
        lines += [f"[profile {profile}]", "sso_session = idp", f"sso_account_id = {ACCT}",
                  f"sso_role_name = {role}", "region = us-east-1"]
        if services:
            lines.append("services = idp-endpoints")
        lines.append("")
    if services:
        lines += ["[services idp-endpoints]", "sso_oidc =", f"  endpoint_url = {url}/sso-oidc",
                  "sso =", f"  endpoint_url = {url}/sso-portal", "sts =",
                  f"  endpoint_url = {url}/sts", ""]
    return "\n".join(lines)
