"""Kit users with second factors: an authenticator enrolled through the real enrolment store,
the kit's ``mfa:`` section validated as the YAML's, ``next_login(mfa="totp")`` answering the
second step page, and headless minting that says MFA when asked (OIDC ``amr``/``acr``, SAML
REFEDS MFA, STS sessions with ``aws:MultiFactorAuthPresent`` for a role that requires it)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.credentials import Credentials as BotoCredentials
from lxml import etree

from idp.errors import ConfigError
from idp.testing import IdpServer, KitError
from idp.testing.config import User
from idp.testing.oidc_mint import payload
from tests.mfa.test_browser import decide

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
REFEDS_MFA = "https://refeds.org/profile/mfa"
CALLBACK = "http://127.0.0.1:8400/callback"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdpServer]:
    users = [User(username=name, groups=["operators"], totp_secret=SECRET)
             for name in ("erin", "gina", "hugo", "ines", "jade")]
    users += [User(username="frank", groups=["operators"]),
             User(username="dave", groups=["engineering"])]
    with IdpServer(users=users) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(idp: IdpServer) -> None:
    idp.reset()


def _code_via_pages(idp: IdpServer, **extra: str) -> tuple[requests.Session, str]:
    """Walk an authorization request for demo-web as a browser would; the code it returns."""
    s = requests.Session()
    params = {"client_id": "demo-web", "redirect_uri": CALLBACK, "response_type": "code",
              "scope": "openid profile", "state": "st", **extra}
    resp = s.get(idp.url + "/oauth2/authorize", params=params, allow_redirects=False,
                 timeout=5)
    for _ in range(12):
        target = resp.headers.get("Location")
        if target is None:
            m = re.search(r'(http://127\.0\.0\.1:8400/callback\?[^"\'<\s]+)', resp.text)
            assert m, resp.text[:400]
            target = m.group(1).replace("&amp;", "&")
        if target.startswith(CALLBACK):
            return s, parse_qs(urlsplit(target).query)["code"][0]
        resp = s.get(idp.url + target if target.startswith("/") else target,
                     allow_redirects=False, timeout=5)
    raise AssertionError("no redirect to the client")


def _id_token(idp: IdpServer, code: str) -> dict[str, Any]:
    r = requests.post(idp.url + "/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=("demo-web", "demo-web-secret"), timeout=5)
    assert r.status_code == 200, r.text
    return payload(r.json()["id_token"])


def test_next_login_with_totp_completes_the_second_step_page_by_itself(
        idp: IdpServer) -> None:
    idp.next_login("erin", mfa="totp")
    _, code = _code_via_pages(idp)
    claims = _id_token(idp, code)
    assert "mfa" in claims["amr"] and "otp" in claims["amr"] and claims["acr"] == REFEDS_MFA
    assert idp.requests("authorize")  # the pages were really walked
    verified = [r for r in idp.audit.records if r.get("eventName") == "MfaVerify"]
    assert verified and verified[-1]["userIdentity"]["userName"] == "erin"


def test_next_login_with_totp_answers_a_step_up_that_acr_values_asks_for(
        idp: IdpServer) -> None:
    """A relying party asking the REFEDS MFA acr (OIDC Core §3.1.2.1) gets the second step
    page; the scripted login answers it like the person's authenticator."""
    idp.next_login("gina", mfa="totp")
    _, code = _code_via_pages(idp, acr_values=REFEDS_MFA)
    assert _id_token(idp, code)["acr"] == REFEDS_MFA


def test_three_scripted_second_steps_within_one_time_step_all_pass(idp: IdpServer) -> None:
    """A TOTP step is spent once (RFC 6238 §5.2): the kit answers with the code of another
    step the server accepts (the next, then the previous one)."""
    for _ in range(3):
        idp.next_login("hugo", mfa="totp")
        _, code = _code_via_pages(idp)
        assert "mfa" in _id_token(idp, code)["amr"]


@pytest.mark.browser
def test_chromium_takes_operator_on_the_federation_page_after_a_scripted_totp_sign_in(
        idp: IdpServer, chromium: Any) -> None:
    """No typing: the login and second step pages answer themselves; the role that requires
    MFA is offered and its credentials are an MFA session for the decision endpoint."""
    idp.next_login("jade", mfa="totp")
    page = chromium.new_page()
    page.goto(idp.url + "/saml/idp-initiated?sp=urn:amazon:webservices")
    page.wait_for_url(idp.url + "/federation/saml")
    page.check('input[value="arn:aws:iam::111122223333:role/Operator"]')
    page.click("#assume")
    creds = dict(re.findall(r"export (AWS_\w+)=(\S+)", page.inner_text("#exports")))
    page.close()
    boto = BotoCredentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"],
                           creds["AWS_SESSION_TOKEN"])
    assert decide(idp.url, boto, "ec2:TerminateInstances")["decision"] == "Allow"


def test_next_login_without_mfa_stays_a_password_sign_in(idp: IdpServer) -> None:
    idp.next_login("erin")
    _, code = _code_via_pages(idp)
    claims = _id_token(idp, code)
    assert "mfa" not in claims["amr"] and claims["acr"] != REFEDS_MFA


def test_next_login_mfa_for_a_person_without_a_factor_is_refused_at_once(
        idp: IdpServer) -> None:
    with pytest.raises(KitError, match="no authenticator enrolled"):
        idp.next_login("frank", mfa="totp")
    with pytest.raises(KitError, match="mfa must be"):
        idp.next_login("erin", mfa="sms")  # type: ignore[arg-type]


def test_headless_login_answers_the_second_step_the_sign_in_asks_for(idp: IdpServer) -> None:
    """``mfa.sign_in: enrolled`` (the default) asks erin for her code at sign-in."""
    pending = idp.login("ines")
    assert "/login" in pending.get(idp.url + "/account", timeout=5).url  # not signed in yet
    s = idp.login("ines", mfa="totp")
    page = s.get(idp.url + "/account", timeout=5)
    assert page.url.endswith("/account") and "ines" in page.text


def test_the_kit_users_dave_is_not_given_the_demo_authenticator(idp: IdpServer) -> None:
    with pytest.raises(KitError, match="no authenticator enrolled"):
        idp.next_login("dave", mfa="totp")


def test_id_token_mfa_says_otp_and_mfa_with_the_refeds_acr(idp: IdpServer) -> None:
    strong = payload(idp.id_token("demo-web", "erin", mfa=True))
    plain = payload(idp.id_token("demo-web", "erin"))
    assert strong["amr"] == ["pwd", "otp", "mfa"] and strong["acr"] == REFEDS_MFA
    assert plain["amr"] == ["pwd"] and plain["acr"] != REFEDS_MFA


def _class_refs(xml: bytes) -> list[str]:
    root = etree.fromstring(xml)
    return [str(e.text) for e in root.iter("{*}AuthnContextClassRef")]


def test_saml_response_mfa_has_the_refeds_mfa_authn_context(idp: IdpServer) -> None:
    sp = idp.kit.saml_sps[0].entity_id if idp.kit.saml_sps else "urn:amazon:webservices"
    strong = idp.saml_response(sp, "erin", mfa=True)
    plain = idp.saml_response(sp, "erin")
    assert _class_refs(base64.b64decode(strong.saml_response)) == [REFEDS_MFA]
    assert REFEDS_MFA not in _class_refs(base64.b64decode(plain.saml_response))


def test_sts_credentials_for_a_role_requiring_mfa_carry_multifactorauthpresent(
        idp: IdpServer) -> None:
    """The demo's Operator trusts only sessions with aws:MultiFactorAuthPresent: erin (with
    an authenticator) gets credentials the decision endpoint sees as an MFA session."""
    c = idp.sts_credentials("erin", "Operator")
    creds = BotoCredentials(c.access_key_id, c.secret_access_key, c.session_token)
    assert decide(idp.url, creds, "ec2:TerminateInstances")["decision"] == "Allow"


def test_sts_credentials_for_a_role_requiring_mfa_refused_without_a_factor(
        idp: IdpServer) -> None:
    with pytest.raises(KitError, match="AccessDenied"):
        idp.sts_credentials("frank", "Operator")
    with pytest.raises(KitError, match="AccessDenied"):
        idp.sts_credentials("erin", "Operator", mfa=False)


def test_the_kit_mfa_section_is_validated_as_the_yaml_one() -> None:
    with pytest.raises(ConfigError) as exc:
        IdpServer(mfa={"sign_in": "sometimes", "code_digits": 4},
                  users=[{"username": "x", "totp_secret": "not base32!"}])
    text = str(exc.value)
    assert "mfa.sign_in" in text and "mfa.code_digits" in text and "totp_secret" in text


def test_mfa_sign_in_required_lets_a_person_with_a_factor_in_with_the_password() -> None:
    """``mfa: {sign_in: required}`` as in the YAML: only required groups are asked at
    sign-in, others step up when a role, SP or client asks."""
    with IdpServer(mfa={"sign_in": "required"},
                   users=[User(username="erin", groups=["operators"], totp_secret=SECRET)]
                   ) as server:
        s = server.login("erin")
        assert s.get(server.url + "/account", timeout=5).url.endswith("/account")
