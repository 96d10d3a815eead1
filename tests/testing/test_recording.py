"""Request recording: what the IdP received, parsed, fast paths included, cleared per test."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import urlencode

import boto3
import pytest
import requests
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request

from idp.testing import IdpServer, KitError
from tests.testing import onelogin


def _redirect_value(xml: str) -> str:
    raw = zlib.compress(xml.encode())[2:-4]  # raw DEFLATE (SAML Bindings §3.4.4.1)
    return base64.b64encode(raw).decode()


def test_authn_request_fields_are_recorded(idp_server: IdpServer) -> None:
    req = OneLogin_Saml2_Authn_Request(onelogin.settings(idp_server), force_authn=True)
    query = urlencode({"SAMLRequest": _redirect_value(req.get_xml()),
                       "RelayState": "/dashboard"})
    requests.get(f"{idp_server.saml_sso_url}?{query}", allow_redirects=False, timeout=5)
    seen = idp_server.take_request("saml_sso")
    assert seen.parsed["force_authn"] is True and seen.parsed["is_passive"] is False
    assert seen.parsed["issuer"] == onelogin.SP_ENTITY and seen.parsed["id"] == req.get_id()
    assert seen.parsed["binding"] == "redirect" and seen.parsed["relay_state"] == "/dashboard"
    assert seen.method == "GET" and seen.status in (302, 303)


def test_a_malformed_authn_request_is_recorded_as_such(idp_server: IdpServer) -> None:
    requests.post(idp_server.saml_sso_url, data={"SAMLRequest": "bm90IHhtbA=="}, timeout=5)
    seen = idp_server.take_request("saml_sso")
    assert "error" in seen.parsed and seen.status == 400


def test_authorize_parameters_are_recorded(idp_server: IdpServer) -> None:
    requests.get(idp_server.url + "/oauth2/authorize", allow_redirects=False, timeout=5, params={
        "client_id": "demo-web", "redirect_uri": "http://127.0.0.1:8400/callback",
        "response_type": "code", "scope": "openid email", "state": "s-1", "nonce": "n-1"})
    seen = idp_server.take_request("authorize")
    assert seen.parsed == {"client_id": "demo-web", "redirect_uri":
                           "http://127.0.0.1:8400/callback", "scope": "openid email",
                           "response_type": "code", "state": "s-1", "nonce": "n-1"}


def test_token_requests_are_recorded_with_secrets_masked(idp_server: IdpServer) -> None:
    resp = requests.post(idp_server.url + "/oauth2/token", timeout=5,
                         auth=("demo-service", "demo-service-secret"),
                         data={"grant_type": "client_credentials", "scope": "roles"})
    assert resp.status_code == 200
    requests.post(idp_server.url + "/oauth2/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": "demo-service",
        "client_secret": "demo-service-secret"})
    basic, post = idp_server.take_request("token"), idp_server.take_request("token")
    assert basic.parsed == {"grant_type": "client_credentials", "client_id": None}
    assert basic.headers["Authorization"] == "Basic ***" and basic.status == 200
    assert post.params["client_secret"] == "***" and post.status == 401
    assert "demo-service-secret" not in repr([basic, post])


def test_passwords_are_never_recorded(idp_server: IdpServer) -> None:
    idp_server.login("alice")
    seen = idp_server.take_request("login")
    assert seen.params["password"] == "***" and "alice-password" not in repr(seen)


def test_sts_actions_through_the_fast_path_are_recorded(idp_server: IdpServer) -> None:
    creds = idp_server.sts_credentials("bob", "Developer")
    boto3.client("sts", endpoint_url=idp_server.sts_url, region_name="us-east-1",
                 **creds.boto3()).get_caller_identity()
    actions = [r.parsed["action"] for r in idp_server.requests("sts")]
    assert actions == ["AssumeRoleWithSAML", "GetCallerIdentity"]
    assert idp_server.requests("sts")[1].headers["Authorization"] == "AWS4-HMAC-SHA256 ***"


def test_take_request_removes_in_order_and_fails_when_none(idp_server: IdpServer) -> None:
    for path in ("/healthz", "/readyz"):
        requests.get(idp_server.url + path, timeout=5)
    assert idp_server.take_request().path == "/healthz"
    assert idp_server.take_request().path == "/readyz"
    with pytest.raises(KitError, match="no token received"):
        idp_server.take_request("token", timeout=0.1)


def test_reset_clears_the_record(idp_server: IdpServer) -> None:
    requests.get(idp_server.url + "/healthz", timeout=5)
    assert idp_server.requests()
    idp_server.reset()
    assert idp_server.requests() == []


def test_the_fixture_starts_each_test_with_an_empty_record(idp_server: IdpServer) -> None:
    """The tests above all left requests behind; this one sees none of them."""
    assert idp_server.requests() == []
