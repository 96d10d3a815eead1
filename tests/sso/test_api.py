"""The SSO OIDC and portal APIs over HTTP: every bad input gets the API's own exception (never
a 500), registrations are public clients that grant nothing by themselves, and nothing in the
SSO path gives more than the role mapping."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from idp.iam.policy import parse_policy
from idp.sso import portal as portal_module
from tests.fixtures.live import LiveIdp
from tests.oidc import rp
from tests.sso import kit

REG = {"clientName": "t", "clientType": "public"}


def _post(url: str, path: str, body: Any = None, *, raw: bytes | None = None,
          ctype: str = "application/json") -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(url + path, data=data, headers={"Content-Type": ctype}, timeout=10)


def _aws_error(r: requests.Response) -> tuple[int, str]:
    return r.status_code, r.headers.get("x-amzn-ErrorType", "")


BAD_OIDC = [
    pytest.param("/sso-oidc/client/register", None, b"{bad", "application/json",
                 (400, "InvalidRequestException"), id="malformed-json"),
    pytest.param("/sso-oidc/client/register", REG, None, "text/plain",
                 (400, "InvalidRequestException"), id="wrong-content-type"),
    pytest.param("/sso-oidc/client/register", None, b"[" * 100_000 + b"]" * 100_000,
                 "application/json", (400, "InvalidRequestException"), id="deeply-nested-json"),
    pytest.param("/sso-oidc/client/register", None, b'{"x":"' + b"a" * 400_000 + b'"}',
                 "application/json", (413, "InvalidRequestException"), id="oversize-body"),
    pytest.param("/sso-oidc/client/register", ["a"], None, "application/json",
                 (400, "InvalidRequestException"), id="body-not-an-object"),
    pytest.param("/sso-oidc/client/register", {"clientName": 5, "clientType": "public"}, None,
                 "application/json", (400, "InvalidRequestException"), id="name-not-a-string"),
    pytest.param("/sso-oidc/client/register", {**REG, "clientType": "confidential"}, None,
                 "application/json", (400, "InvalidClientMetadataException"),
                 id="confidential-client-type"),
    pytest.param("/sso-oidc/client/register", {**REG, "scopes": ["openid", "roles"]}, None,
                 "application/json", (400, "InvalidScopeException"), id="scope-beyond-sso"),
    pytest.param("/sso-oidc/client/register", {**REG, "grantTypes": ["client_credentials"]},
                 None, "application/json", (400, "UnsupportedGrantTypeException"),
                 id="client-credentials-grant"),
    pytest.param("/sso-oidc/client/register", {**REG, "grantTypes": ["authorization_code"],
                                               "redirectUris": ["https://evil.example/cb"]},
                 None, "application/json", (400, "InvalidRedirectUriException"),
                 id="non-loopback-redirect"),
    pytest.param("/sso-oidc/client/register", {**REG, "grantTypes": ["authorization_code"]},
                 None, "application/json", (400, "InvalidRedirectUriException"),
                 id="code-grant-without-redirect"),
    pytest.param("/sso-oidc/token", {"clientId": "sso.nope", "clientSecret": "x",
                                     "grantType": "refresh_token", "refreshToken": "r"},
                 None, "application/json", (401, "InvalidClientException"),
                 id="unknown-client"),
    pytest.param("/sso-oidc/token", {"clientId": "demo-cli", "clientSecret": "x",
                                     "grantType": "refresh_token", "refreshToken": "r"},
                 None, "application/json", (401, "InvalidClientException"),
                 id="configured-client-is-not-an-sso-client"),
    pytest.param("/sso-oidc/token", {"clientId": "x"}, None, "application/json",
                 (400, "InvalidRequestException"), id="token-missing-members"),
    pytest.param("/sso-oidc/device_authorization", {"clientId": "sso.nope"}, None,
                 "application/json", (400, "InvalidRequestException"),
                 id="device-missing-members"),
]


@pytest.mark.parametrize(("path", "body", "raw", "ctype", "expected"), BAD_OIDC)
def test_bad_sso_oidc_requests_get_the_apis_own_exception(
        demo_idp: LiveIdp, path: str, body: Any, raw: bytes | None, ctype: str,
        expected: tuple[int, str]) -> None:
    r = _post(demo_idp.url, path, body, raw=raw, ctype=ctype)
    assert _aws_error(r) == expected
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["error"] and "error_description" in r.json()


def test_wrong_method_is_an_api_error_not_an_html_page(demo_idp: LiveIdp) -> None:
    r = requests.get(demo_idp.url + "/sso-oidc/token", timeout=5)
    assert _aws_error(r) == (405, "InvalidRequestException")
    r = requests.post(demo_idp.url + "/sso-portal/assignment/accounts", timeout=5)
    assert _aws_error(r) == (405, "InvalidRequestException") and "message" in r.json()


def _registered(url: str, **extra: Any) -> dict[str, Any]:
    return kit.register(kit.client("sso-oidc", url), **extra)


def test_wrong_secret_bad_grant_and_foreign_start_url(demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    oidc = kit.client("sso-oidc", url)
    reg = _registered(url)
    cases = [
        (lambda: oidc.create_token(clientId=reg["clientId"], clientSecret="wrong",
                                   grantType="refresh_token", refreshToken="r"),
         "InvalidClientException"),
        (lambda: oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                   grantType="password"), "UnsupportedGrantTypeException"),
        (lambda: oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                   grantType=kit.DEVICE, deviceCode="not-a-code"),
         "InvalidGrantException"),
        (lambda: oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                   grantType="authorization_code", code="c",
                                   redirectUri="http://127.0.0.1/oauth/callback"),
         "UnauthorizedClientException"),  # not registered for the code grant
        (lambda: oidc.start_device_authorization(clientId=reg["clientId"],
                                                 clientSecret=reg["clientSecret"],
                                                 startUrl="https://evil.example/start"),
         "InvalidRequestException"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == code


def test_expired_device_code_is_expired_token(demo_idp: LiveIdp) -> None:
    oidc = kit.client("sso-oidc", demo_idp.url)
    reg = _registered(demo_idp.url)
    start = oidc.start_device_authorization(clientId=reg["clientId"],
                                            clientSecret=reg["clientSecret"],
                                            startUrl=demo_idp.url + "/start/")
    core = demo_idp.components.extras["oidc"].core
    core.clock = lambda: time.time() + start["expiresIn"] + 1
    with pytest.raises(ClientError) as exc:
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType=kit.DEVICE, deviceCode=start["deviceCode"])
    assert exc.value.response["Error"]["Code"] == "ExpiredTokenException"


def test_registrations_are_rate_limited_per_ip(demo_idp: LiveIdp) -> None:
    limit = demo_idp.components.extras["sso_oidc"].registrations.settings.registrations
    for _ in range(limit):
        assert _post(demo_idp.url, "/sso-oidc/client/register", REG).status_code == 200
    r = _post(demo_idp.url, "/sso-oidc/client/register", REG)
    assert _aws_error(r) == (400, "SlowDownException")


def test_expired_registration_is_an_unknown_client(demo_idp: LiveIdp) -> None:
    reg = _registered(demo_idp.url)
    regs = demo_idp.components.extras["sso_oidc"].registrations
    regs.clock = lambda: time.time() + regs.settings.ttl + 1
    with pytest.raises(ClientError) as exc:
        kit.client("sso-oidc", demo_idp.url).start_device_authorization(
            clientId=reg["clientId"], clientSecret=reg["clientSecret"],
            startUrl=demo_idp.url + "/start")
    assert exc.value.response["Error"]["Code"] == "InvalidClientException"


def test_registered_client_is_public_no_introspection_no_secretless_token_calls(
        demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    reg, token = kit.sign_in(url, "carol")
    r = requests.post(url + "/oauth2/introspect", timeout=5, data={
        "token": token["accessToken"], "client_id": reg["clientId"],
        "client_secret": reg["clientSecret"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(url + "/oauth2/token", timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": token["refreshToken"],
        "client_id": reg["clientId"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = requests.post(url + "/oauth2/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": reg["clientId"],
        "client_secret": reg["clientSecret"]})
    assert r.json()["error"] == "unauthorized_client"


def _portal(url: str, path: str, token: str | None, **params: str) -> requests.Response:
    headers = {"x-amz-sso_bearer_token": token} if token is not None else {}
    return requests.get(url + "/sso-portal" + path, params=params, headers=headers, timeout=5)


def test_portal_bad_requests_get_the_apis_own_exception(demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    _, token = kit.sign_in(url, "alice")
    at = token["accessToken"]
    cases = [
        (_portal(url, "/assignment/accounts", None), (401, "UnauthorizedException")),
        (_portal(url, "/assignment/accounts", "not-a-token"), (401, "UnauthorizedException")),
        (_portal(url, "/assignment/accounts", at, max_result="0"),
         (400, "InvalidRequestException")),
        (_portal(url, "/assignment/accounts", at, max_result="abc"),
         (400, "InvalidRequestException")),
        (_portal(url, "/assignment/accounts", at, next_token="%%%"),
         (400, "InvalidRequestException")),
        (_portal(url, "/assignment/roles", at, account_id="12"),
         (400, "InvalidRequestException")),
        (_portal(url, "/federation/credentials", at, account_id=kit.ACCT,
                 role_name="../Admin"), (400, "InvalidRequestException")),
        (_portal(url, "/federation/credentials", at, account_id=kit.ACCT,
                 role_name="NoSuchRole"), (403, "ForbiddenException")),
        (_portal(url, "/federation/credentials", at, account_id="999999999999",
                 role_name="Admin"), (403, "ForbiddenException")),
    ]
    for r, expected in cases:
        assert _aws_error(r) == expected, r.text
        assert "message" in r.json()


def test_other_clients_access_tokens_are_not_sso_bearer_tokens(demo_idp: LiveIdp) -> None:
    """A demo-cli token (scope `openid roles`, roles claim and all) is not accepted: the
    portal needs `sso:account:access`, which only SSO registrations get."""
    url = demo_idp.url
    start = requests.post(url + "/oauth2/device_authorization", timeout=5, data={
        "client_id": "demo-cli", "scope": "openid roles"}).json()
    kit.approve(url, "alice", start["user_code"])
    tok = requests.post(url + "/oauth2/token", timeout=5, data={
        "grant_type": kit.DEVICE, "device_code": start["device_code"],
        "client_id": "demo-cli"}).json()
    r = _portal(url, "/federation/credentials", tok["access_token"], account_id=kit.ACCT,
                role_name="Admin")
    assert _aws_error(r) == (401, "UnauthorizedException")
    r = _portal(url, "/assignment/accounts", tok["access_token"])
    assert _aws_error(r) == (401, "UnauthorizedException")


def test_expired_access_token_is_unauthorized(demo_idp: LiveIdp) -> None:
    _, token = kit.sign_in(demo_idp.url, "alice")
    core = demo_idp.components.extras["oidc"].core
    claims = core.signer.verify(token["accessToken"], typ="at+jwt", audience=core.audience)
    stale = core.signer.sign({**claims, "iat": claims["iat"] - 7200,
                              "exp": int(time.time()) - 120}, typ="at+jwt")
    r = _portal(demo_idp.url, "/federation/credentials", stale, account_id=kit.ACCT,
                role_name="ReadOnly")
    assert _aws_error(r) == (401, "UnauthorizedException")


def test_role_whose_trust_policy_refuses_the_portal_is_forbidden(demo_idp: LiveIdp) -> None:
    """The mapping gives carol ReadOnly, but GetRoleCredentials still goes through the role's
    trust policy: one that admits only `demo-cli` tokens refuses the portal's sessions."""
    model = demo_idp.components.iam
    arn = f"arn:aws:iam::{kit.ACCT}:role/ReadOnly"
    provider = next(iter(model.oidc_providers.values()))
    doc = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider.arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{provider.condition_prefix}:aud": "demo-cli"}}}]}
    model.roles[arn] = dataclasses.replace(model.roles[arn],
                                           trust_policy=parse_policy(doc, "trust", "t"))
    model._sets.pop(f"trust:{arn}", None)
    _, token = kit.sign_in(demo_idp.url, "carol")
    r = _portal(demo_idp.url, "/federation/credentials", token["accessToken"],
                account_id=kit.ACCT, role_name="ReadOnly")
    assert _aws_error(r) == (403, "ForbiddenException")
    refused = [e for e in demo_idp.audit.records if e["eventName"] == "GetRoleCredentials"]
    assert "AccessDenied" in refused[-1]["additionalEventData"]["debug"]


def test_credentials_are_rate_limited_per_sign_in(demo_idp: LiveIdp,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portal_module, "CREDENTIALS_PER_MINUTE", 2)
    _, token = kit.sign_in(demo_idp.url, "carol")
    codes = [_portal(demo_idp.url, "/federation/credentials", token["accessToken"],
                     account_id=kit.ACCT, role_name="ReadOnly").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_authorization_code_with_pkce_through_the_sso_authorize_endpoint(
        demo_idp: LiveIdp) -> None:
    """Newer AWS CLI v2 builds: loopback redirect, PKCE S256, `scopes` in the query."""
    url = demo_idp.url
    oidc = kit.client("sso-oidc", url)
    reg = kit.register(oidc, grantTypes=["authorization_code", "refresh_token"],
                       redirectUris=["http://127.0.0.1/oauth/callback"])
    browser = requests.Session()
    redirect_uri = "http://127.0.0.1:43127/oauth/callback"

    def code_for(challenge: str) -> str:
        r = browser.get(reg["authorizationEndpoint"], allow_redirects=False, timeout=5, params={
            "response_type": "code", "client_id": reg["clientId"], "redirect_uri": redirect_uri,
            "state": "st", "code_challenge_method": "S256", "code_challenge": challenge,
            "scopes": "sso:account:access"})
        assert r.status_code == 302
        back = rp.follow_to_client(browser, r.headers["Location"], user="bob")
        assert back.startswith(redirect_uri)
        query = parse_qs(urlsplit(back).query)
        assert query["state"] == ["st"]
        return query["code"][0]

    verifier, challenge = rp.pkce_pair()
    with pytest.raises(ClientError) as bad:
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType="authorization_code", code=code_for(challenge),
                          redirectUri=redirect_uri, codeVerifier=rp.pkce_pair()[0])
    assert bad.value.response["Error"]["Code"] == "InvalidGrantException"
    token = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                              grantType="authorization_code", code=code_for(challenge),
                              redirectUri=redirect_uri, codeVerifier=verifier)
    roles = kit.client("sso", url).list_account_roles(accessToken=token["accessToken"],
                                                      accountId=kit.ACCT)["roleList"]
    assert {r["roleName"] for r in roles} == kit.MAPPING["bob"]


@pytest.mark.parametrize(("headers", "message"), [
    pytest.param({"x-amz-sso_bearer_token": "junk"}, "session token not found or invalid",
                 id="underscore-header-kept"),
    pytest.param({"X-Amz-Sso-Bearer-Token": "junk"}, "session token not found or invalid",
                 id="hyphen-header"),
    pytest.param({"x-amz-sso_bearer_token": "a", "X-Amz-Sso-Bearer-Token": "b"},
                 "no bearer token (`x-amz-sso_bearer_token`)", id="both-forms-ambiguous-dropped"),
])
def test_bearer_header_reaches_the_portal_only_when_unambiguous(
        demo_idp: LiveIdp, headers: dict[str, str], message: str) -> None:
    r = requests.get(demo_idp.url + "/sso-portal/assignment/accounts", headers=headers,
                     timeout=5)
    assert _aws_error(r) == (401, "UnauthorizedException")
    assert r.json()["message"] == message
