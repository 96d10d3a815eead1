"""MFA as independent clients see it, over real HTTP: an OIDC relying party asking for the
MFA acr (requests-oauthlib + PyJWT), python3-saml asking for the REFEDS MFA profile in
RequestedAuthnContext (step-up, and NoAuthnContext with IsPassive), and boto3 with a virtual
MFA device (GetSessionToken with a valid, a wrong and a replayed code)."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.exceptions
import pytest
import requests
from flask import redirect
from requests_oauthlib import OAuth2Session

from idp.config import MfaTotpDeviceConfig, SamlConfig, SamlSpOptions, StsAccessKeyConfig
from idp.demo import DEMO_TOTP_SECRET, demo_config
from idp.mfa import totp
from tests.fixtures.live import LiveIdp, live_idp, serve_app
from tests.fixtures.servers import free_port
from tests.oidc.rp import WEB, follow_to_client, form_value, login, verify_id_token
from tests.saml.conftest import Browser
from tests.saml.spapps import OneLoginSp
from tests.sts.conftest import USER_KEY
from tests.sts.live import sts_client

REFEDS_MFA = "https://refeds.org/profile/mfa"
SERIAL = "arn:aws:iam::111122223333:mfa/ops-phone"
DEVICE_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
OPERATOR = "arn:aws:iam::111122223333:role/Operator"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class MfaSp(OneLoginSp):
    """python3-saml asking for the REFEDS MFA profile; ``/passive`` sends IsPassive."""

    def __init__(self, port: int, idp_url: str) -> None:
        super().__init__(port, idp_url, name="mfa-sp")

        @self.app.get("/passive")
        def passive() -> Any:
            return redirect(self._auth().login(is_passive=True))

    def settings(self, idp: dict[str, Any] | None = None) -> dict[str, Any]:
        s = super().settings(idp)
        s["security"]["requestedAuthnContext"] = [REFEDS_MFA]
        s["security"]["requestedAuthnContextComparison"] = "exact"
        return s


@pytest.fixture
def env(demo_keys_dir: Path, tmp_path: Path) -> Iterator[tuple[LiveIdp, MfaSp]]:
    port = free_port()
    sp = MfaSp(free_port(), f"http://127.0.0.1:{port}")
    mdir = tmp_path / "metadata"
    mdir.mkdir()
    (mdir / "mfa-sp.xml").write_text(sp.metadata())
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[mdir], audit="none")
    config = config.model_copy(update={
        "saml": SamlConfig(service_providers={sp.entity_id: SamlSpOptions()}),
        "mfa": config.mfa.model_copy(update={"sign_in": "required", "devices": [
            MfaTotpDeviceConfig(serial_number=SERIAL, access_key_id=USER_KEY.access_key_id,
                                secret=DEVICE_SECRET)]}),
        "sts": config.sts.model_copy(update={"access_keys": [
            StsAccessKeyConfig(access_key_id=USER_KEY.access_key_id,
                               secret_access_key=USER_KEY.secret_access_key,
                               principal_arn=USER_KEY.principal_arn)]}),
    })
    with ExitStack() as stack:
        idp = stack.enter_context(live_idp(config, demo=True, port=port))
        stack.enter_context(serve_app(sp.app, sp.port))
        yield idp, sp


def second_factor(s: requests.Session, base: str, location: str) -> str:
    """At ``/login/mfa?next=…``: type dave's current code; where the browser goes next."""
    assert urlsplit(location).path == "/login/mfa", location
    page = s.get(base + location).text
    nxt = parse_qs(urlsplit(location).query)["next"][0]
    r = s.post(base + "/login/mfa", allow_redirects=False, data={
        "csrf_token": form_value(_CSRF, page), "method": "totp", "next": nxt,
        "code": totp.code_at(DEMO_TOTP_SECRET, time.time() + totp.STEP)})
    assert r.status_code == 303, r.text[:300]
    return str(r.headers["Location"])


def authorize_url(base: str, **extra: str) -> tuple[OAuth2Session, str, str, str]:
    client_id, _, redirect_uri = WEB
    nonce = secrets.token_urlsafe(12)
    rp = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=["openid", "roles"])
    url, state = rp.authorization_url(f"{base}/oauth2/authorize", nonce=nonce, **extra)
    return rp, url, state, nonce


def id_token_claims(base: str, rp: OAuth2Session, landed: str, nonce: str) -> dict[str, Any]:
    token = rp.fetch_token(f"{base}/oauth2/token", authorization_response=landed,
                           client_secret=WEB[1])
    return verify_id_token(base, token["id_token"], WEB[0], nonce).claims


def test_oidc_acr_values_mfa_steps_up_and_id_token_says_mfa(env: tuple[LiveIdp, MfaSp]
                                                             ) -> None:
    idp, _ = env
    base = idp.url
    s = requests.Session()
    assert login(s, base, "dave").headers["Location"] == "/account"  # password only
    rp, url, _, nonce = authorize_url(base, acr_values=REFEDS_MFA)
    r = s.get(url, allow_redirects=False)
    back = second_factor(s, base, r.headers["Location"])
    assert back.startswith("/oauth2/authorize?resume=")
    landed = follow_to_client(s, base + back, user="dave")
    claims = id_token_claims(base, rp, landed, nonce)
    assert claims["acr"] == REFEDS_MFA
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert isinstance(claims["auth_time"], int)


def test_oidc_without_mfa_says_password_only(env: tuple[LiveIdp, MfaSp]) -> None:
    idp, _ = env
    base = idp.url
    s = requests.Session()
    login(s, base, "alice")
    rp, url, _, nonce = authorize_url(base)
    claims = id_token_claims(base, rp, follow_to_client(s, url), nonce)
    assert claims["acr"] == "urn:idp:acr:password" and claims["amr"] == ["pwd"]


def test_oidc_prompt_none_with_mfa_acr_is_interaction_required(env: tuple[LiveIdp, MfaSp]
                                                               ) -> None:
    idp, _ = env
    s = requests.Session()
    login(s, idp.url, "dave")
    _, url, state, _ = authorize_url(idp.url, acr_values=REFEDS_MFA, prompt="none")
    r = s.get(url, allow_redirects=False)
    query = parse_qs(urlsplit(r.headers["Location"]).query)
    assert query["error"] == ["interaction_required"] and query["state"] == [state]


def test_oidc_token_with_mfa_takes_operator_through_web_identity(env: tuple[LiveIdp, MfaSp]
                                                                 ) -> None:
    idp, _ = env
    base = idp.url
    s = requests.Session()
    login(s, base, "dave")
    rp, url, _, nonce = authorize_url(base, acr_values=REFEDS_MFA)
    back = second_factor(s, base, s.get(url, allow_redirects=False).headers["Location"])
    token = rp.fetch_token(f"{base}/oauth2/token", client_secret=WEB[1],
                           authorization_response=follow_to_client(s, base + back, user="dave"))
    sts = sts_client(base)
    out = sts.assume_role_with_web_identity(RoleArn=OPERATOR, RoleSessionName="dave",
                                            WebIdentityToken=token["id_token"])
    assert out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/Operator/dave")


def saml_response_of(b: Browser) -> bytes:
    posted = [r for r in b.seen if r.request.method == "POST"
              and urlsplit(r.request.url or "").path == "/acs"]
    assert posted, "nothing posted to the ACS"
    body = parse_qs(str(posted[-1].request.body))
    return base64.b64decode(body["SAMLResponse"][0])


def test_python3_saml_requested_refeds_mfa_steps_up(env: tuple[LiveIdp, MfaSp]) -> None:
    idp, sp = env
    b = Browser(idp.url, "dave", "dave-password")
    page = b.go(sp.base + "/login")
    assert "/login/mfa" in page.url  # after the password, the second factor
    nxt = parse_qs(urlsplit(page.url).query)["next"][0]
    r = b.s.post(idp.url + "/login/mfa", data={
        "csrf_token": form_value(_CSRF, page.text), "method": "totp", "next": nxt,
        "code": totp.code_at(DEMO_TOTP_SECRET, time.time() + totp.STEP)})
    done = b.follow(r)
    assert done.status_code == 200, done.text[:500]
    assert done.json()["name_id"]  # python3-saml (strict) accepted it
    xml = saml_response_of(b)
    assert f"<saml:AuthnContextClassRef>{REFEDS_MFA}</saml:AuthnContextClassRef>".encode() in xml


def test_python3_saml_is_passive_without_mfa_gets_no_authn_context(
        env: tuple[LiveIdp, MfaSp]) -> None:
    idp, sp = env
    b = Browser(idp.url, "dave", "dave-password")
    login(b.s, idp.url, "dave")  # a session with the password alone
    b.go(sp.base + "/passive")
    xml = saml_response_of(b)
    assert b"urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext" in xml
    assert b"<saml:Assertion" not in xml


def test_boto3_get_session_token_valid_wrong_replayed(env: tuple[LiveIdp, MfaSp]) -> None:
    idp, _ = env
    sts = sts_client(idp.url, {"AccessKeyId": USER_KEY.access_key_id,
                               "SecretAccessKey": USER_KEY.secret_access_key})
    code = totp.code_at(DEVICE_SECRET, time.time())
    wrong = f"{(int(code) + 500_000) % 1_000_000:06d}"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.get_session_token(SerialNumber=SERIAL, TokenCode=wrong)
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    creds = sts.get_session_token(SerialNumber=SERIAL, TokenCode=code)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    stored = idp.components.extras["sts"].credentials.peek(creds["AccessKeyId"])
    assert stored.mfa
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.get_session_token(SerialNumber=SERIAL, TokenCode=code)
    assert info.value.response["Error"]["Code"] == "AccessDenied"
