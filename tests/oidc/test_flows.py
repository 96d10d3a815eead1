"""The provider against an independent relying party (requests-oauthlib + PyJWT), live HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import jwt
import pytest
import requests

from idp.oidc.clients import demo_clients
from idp.oidc.core import Core
from idp.oidc.tokens import Grant, issue
from tests.fixtures.live import LiveIdp
from tests.oidc import rp

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def events(idp: LiveIdp) -> list[str]:
    return [r["eventName"] for r in idp.audit.records]


def test_discovery_is_complete_and_truthful(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    assert meta["issuer"] == base
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token",
                                                  "client_credentials", DEVICE}
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert meta["authorization_response_iss_parameter_supported"] is True
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "introspection_endpoint", "revocation_endpoint", "end_session_endpoint",
                 "device_authorization_endpoint"):
        assert meta[name].startswith(base + "/")
        r = requests.post(meta[name], timeout=5, allow_redirects=False)
        assert r.status_code != 404, name  # every advertised endpoint exists


def test_jwks_publishes_next_and_active_keys_and_tokens_carry_kid(demo_idp: LiveIdp) -> None:
    manifest = json.loads((demo_idp.config.keys.dir / "keys.json").read_text())["keys"]
    jwks = requests.get(f"{demo_idp.url}/oauth2/jwks", timeout=5).json()["keys"]
    published = {k["kid"]: k for k in jwks}
    for entry in manifest:
        if entry["state"] in ("next", "active"):
            assert published[entry["kid"]]["alg"] == entry["alg"]
    assert {k["alg"] for k in jwks} == {"RS256", "ES256"}
    r = requests.post(f"{demo_idp.url}/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=rp.SERVICE, timeout=5)
    kid = jwt.get_unverified_header(r.json()["access_token"])["kid"]
    active = {e["kid"] for e in manifest if e["state"] == "active"}
    assert kid in active


def test_demo_web_code_flow_userinfo_refresh_revoke(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    client, secret, redirect_uri = rp.WEB
    session, token, nonce = rp.code_flow(base, client, redirect_uri, secret=secret)
    idt = rp.verify_id_token(base, token["id_token"], client, nonce, token["access_token"])
    assert idt.header["kid"] and idt.claims["preferred_username"] == "alice"
    assert "arn:aws:iam::111122223333:role/Admin" in idt.claims["roles"]
    tags = idt.claims["https://aws.amazon.com/tags"]
    assert tags["principal_tags"]["username"] == ["alice"]
    assert tags["transitive_tag_keys"] == ["username"]
    assert idt.claims["amr"] == ["pwd"] and idt.claims["auth_time"] <= time.time()
    info = session.get(f"{base}/oauth2/userinfo", timeout=5).json()
    assert info["sub"] == idt.claims["sub"] and info["email"] == "alice@example.org"
    assert info["groups"] == ["admins", "engineering"]

    new = session.refresh_token(f"{base}/oauth2/token", auth=(client, secret))
    assert new["refresh_token"] != token["refresh_token"]
    rp.verify_id_token(base, new["id_token"], client, None, new["access_token"])
    assert session.get(f"{base}/oauth2/userinfo", timeout=5).status_code == 200

    r = requests.post(f"{base}/oauth2/revoke", data={"token": new["access_token"]},
                      auth=(client, secret), timeout=5)
    assert r.status_code == 200
    assert session.get(f"{base}/oauth2/userinfo", timeout=5).status_code == 401
    requests.post(f"{base}/oauth2/revoke", data={"token": new["refresh_token"]},
                  auth=(client, secret), timeout=5)
    r = requests.post(f"{base}/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
        auth=(client, secret), timeout=5)
    assert r.json()["error"] == "invalid_grant"
    seen = events(demo_idp)
    for name in ("OidcAuthorize", "OidcToken", "OidcRefresh", "OidcRevoke", "OidcTokenRefused"):
        assert name in seen


def test_demo_cli_public_client_pkce_on_any_loopback_port(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    redirect_uri = rp.cli_redirect(51234)
    session, token, nonce = rp.code_flow(base, "demo-cli", redirect_uri, user="bob")
    idt = rp.verify_id_token(base, token["id_token"], "demo-cli", nonce, token["access_token"])
    assert idt.claims["groups"] == ["engineering"]
    assert "arn:aws:iam::111122223333:role/Admin" not in idt.claims["roles"]
    assert session.get(f"{base}/oauth2/userinfo", timeout=5).json()["preferred_username"] == "bob"
    new = session.refresh_token(f"{base}/oauth2/token", client_id="demo-cli")
    assert new["access_token"] != token["access_token"]
    r = requests.post(f"{base}/oauth2/revoke", timeout=5, data={
        "token": new["refresh_token"], "client_id": "demo-cli"})
    assert r.status_code == 200
    r = requests.post(f"{base}/oauth2/token", timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": new["refresh_token"],
        "client_id": "demo-cli"})
    assert r.json()["error"] == "invalid_grant"
    # the revoked family's access token is dead too (RFC 7009 §2.1)
    assert session.get(f"{base}/oauth2/userinfo", timeout=5).status_code == 401


def _poll(base: str, device_code: str) -> requests.Response:
    return requests.post(f"{base}/oauth2/token", timeout=5, data={
        "grant_type": DEVICE, "device_code": device_code, "client_id": "demo-cli"})


def test_device_flow_end_to_end_over_http(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    start = requests.post(f"{base}/oauth2/device_authorization", timeout=5, data={
        "client_id": "demo-cli", "scope": "openid profile roles"}).json()
    assert start["verification_uri"] == f"{base}/device" and start["interval"] >= 1
    assert _poll(base, start["device_code"]).json()["error"] == "authorization_pending"
    assert _poll(base, start["device_code"]).json()["error"] == "slow_down"

    browser = requests.Session()
    rp.login(browser, base, "carol", next_path="/device")
    page = browser.get(start["verification_uri_complete"], timeout=5)
    assert start["user_code"] in page.text
    csrf = rp.form_value(rp._CSRF, page.text)
    confirm = browser.post(f"{base}/device", timeout=5, data={
        "csrf_token": csrf, "user_code": start["user_code"].lower()})
    assert "Demo CLI" in confirm.text and 'value="approve"' in confirm.text
    done = browser.post(f"{base}/device", timeout=5, data={
        "csrf_token": csrf, "user_code": start["user_code"], "decision": "approve"})
    assert 'id="device-done"' in done.text

    token = _poll(base, start["device_code"]).json()
    idt = rp.verify_id_token(base, token["id_token"], "demo-cli", None, token["access_token"])
    assert idt.claims["roles"] == ["arn:aws:iam::111122223333:role/ReadOnly"]
    assert "refresh_token" in token
    assert _poll(base, start["device_code"]).json()["error"] == "invalid_grant"  # one use
    assert "OidcDeviceApproved" in events(demo_idp)


def test_device_flow_denied(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    start = requests.post(f"{base}/oauth2/device_authorization", timeout=5,
                          data={"client_id": "demo-cli"}).json()
    browser = requests.Session()
    rp.login(browser, base, "bob", next_path="/device")
    csrf = rp.form_value(rp._CSRF, browser.get(f"{base}/device", timeout=5).text)
    browser.post(f"{base}/device", timeout=5, data={
        "csrf_token": csrf, "user_code": start["user_code"], "decision": "deny"})
    assert _poll(base, start["device_code"]).json()["error"] == "access_denied"


def _introspect(base: str, token: str, auth: Any = rp.SERVICE) -> requests.Response:
    return requests.post(f"{base}/oauth2/introspect", data={"token": token}, auth=auth,
                         timeout=5)


def test_client_credentials_and_introspection_active_expired_revoked(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    r = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=rp.SERVICE, timeout=5)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and "refresh_token" not in body
    assert "id_token" not in body

    active = _introspect(base, body["access_token"]).json()
    assert active["active"] is True and active["client_id"] == "demo-service"
    assert active["sub"] == "demo-service" and active["exp"] > time.time()

    # expired: a token minted by the same keys with a clock an hour behind
    comps = demo_idp.components
    past = Core.build(comps.config.issuer, comps.config.oidc, keys=comps.keys,
                      store=comps.store, auditor=comps.auditor, roles=None,
                      secret=comps.secret, extra_clients=demo_clients(),
                      clock=lambda: time.time() - 3600)
    client = past.clients.get("demo-service")
    assert client is not None
    expired = issue(past, Grant(client, ["roles"]))["access_token"]
    assert _introspect(base, expired).json() == {"active": False}

    assert requests.post(f"{base}/oauth2/revoke", data={"token": body["access_token"]},
                         auth=rp.SERVICE, timeout=5).status_code == 200
    assert _introspect(base, body["access_token"]).json() == {"active": False}
    assert "OidcRevoke" in events(demo_idp)


@pytest.mark.parametrize("auth, status", [
    pytest.param(None, 401, id="introspection-without-client-auth"),
    pytest.param(("demo-service", "wrong"), 401, id="introspection-wrong-secret"),
])
def test_introspection_requires_client_authentication(demo_idp: LiveIdp, auth: Any,
                                                      status: int) -> None:
    r = _introspect(demo_idp.url, "x.y.z", auth)
    assert r.status_code == status and r.json()["error"] == "invalid_client"


def test_introspection_refused_to_public_clients(demo_idp: LiveIdp) -> None:
    r = requests.post(f"{demo_idp.url}/oauth2/introspect", timeout=5,
                      data={"token": "x.y.z", "client_id": "demo-cli"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_id_token_works_with_assume_role_with_web_identity(demo_idp: LiveIdp) -> None:
    """The point of the roles claim: an unmodified boto3 STS client exchanges the ID token."""
    base = demo_idp.url
    _, token, _ = rp.code_flow(base, "demo-cli", rp.cli_redirect(50007))
    sts = boto3.client("sts", endpoint_url=f"{base}/sts", region_name="us-east-1",
                       aws_access_key_id="unused", aws_secret_access_key="unused")
    out = sts.assume_role_with_web_identity(
        RoleArn="arn:aws:iam::111122223333:role/Admin", RoleSessionName="alice",
        WebIdentityToken=token["id_token"])
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::111122223333:assumed-role/Admin/alice"
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert out["Audience"] == "demo-cli"
