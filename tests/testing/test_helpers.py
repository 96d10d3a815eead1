"""Headless helpers: each minted thing is accepted by an independent consumer (python3-saml,
PyJWT, boto3) and goes through the IdP's own signing code and role mapping."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from idp.saml.build import instant
from idp.testing import IdpServer, KitError
from idp.testing.saml_mint import ROLE_ATTRIBUTE
from tests.testing import onelogin

AWS_SP = "urn:amazon:webservices"
ADMIN = "arn:aws:iam::111122223333:role/Admin"


def _client(idp: IdpServer, service: str, creds: Any) -> Any:
    path = "/sts" if service == "sts" else "/iam"
    return boto3.client(service, endpoint_url=idp.url + path, region_name="us-east-1",
                        **creds.boto3())


def test_login_gives_a_signed_in_session(idp_server: IdpServer) -> None:
    page = idp_server.login("alice").get(idp_server.url + "/account", timeout=5)
    assert page.status_code == 200 and "alice" in page.text and "role/Admin" in page.text


def test_login_of_an_unknown_user_is_refused(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="no password known"):
        idp_server.login("mallory")


def test_saml_response_is_accepted_by_python3_saml(idp_server: IdpServer) -> None:
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice", relay_state="/after")
    verdict = onelogin.verify(idp_server, post.saml_response)
    assert verdict.valid, verdict.error
    assert post.url == onelogin.SP_ACS and post.data["RelayState"] == "/after"


def test_saml_response_answers_an_authn_request(idp_server: IdpServer) -> None:
    post = idp_server.saml_response(onelogin.SP_ENTITY, "bob", in_response_to="_req-42")
    assert onelogin.verify(idp_server, post.saml_response, request_id="_req-42").valid
    assert not onelogin.verify(idp_server, post.saml_response, request_id="_other").valid


def test_saml_overrides_stay_signed_by_the_idp(idp_server: IdpServer) -> None:
    """An override changes what the assertion says, not whether the IdP signed it: the SP
    refuses it for the changed field only."""
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice",
                                    audience="https://someone-else.example")
    verdict = onelogin.verify(idp_server, post.saml_response)
    assert not verdict.valid and "audience" in (verdict.error or "").lower()
    assert b'<saml:Audience>https://someone-else.example</saml:Audience>' in post.xml


def test_unknown_override_is_refused(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="unknown override `colour`"):
        idp_server.saml_response(onelogin.SP_ENTITY, "alice", colour="red")


def test_saml_role_attribute_follows_the_mapping(idp_server: IdpServer) -> None:
    bob = idp_server.saml_response(AWS_SP, "bob").xml.decode()
    alice = idp_server.saml_response(AWS_SP, "alice").xml.decode()
    assert ROLE_ATTRIBUTE in bob and "role/Developer" in bob and "role/Admin" not in bob
    assert "role/Admin" in alice


def test_id_token_verifies_with_the_published_jwks(idp_server: IdpServer) -> None:
    token = idp_server.id_token("demo-web", "alice", nonce="n-1")
    key = jwt.PyJWKClient(idp_server.url + "/oauth2/jwks").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="demo-web",
                        issuer=idp_server.issuer)
    assert claims["nonce"] == "n-1" and claims["email"] == "alice@example.org"
    assert "arn:aws:iam::111122223333:role/Admin" in json.dumps(claims)


def test_id_token_claims_are_merged_and_none_removes(idp_server: IdpServer) -> None:
    token = idp_server.id_token("demo-web", "bob", claims={"email": "x@y.z", "name": None})
    key = jwt.PyJWKClient(idp_server.url + "/oauth2/jwks").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="demo-web")
    assert claims["email"] == "x@y.z" and "name" not in claims


def test_id_token_respects_the_clients_scopes(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="may not ask for scope `openid`"):
        idp_server.id_token("demo-service", "alice", scopes=["openid"])


def test_access_token_is_accepted_by_userinfo(idp_server: IdpServer) -> None:
    token = idp_server.access_token("demo-web", "carol")
    info = requests.get(idp_server.url + "/oauth2/userinfo", timeout=5,
                        headers={"Authorization": f"Bearer {token}"})
    assert info.status_code == 200 and info.json()["preferred_username"] == "carol"


def test_access_token_for_the_client_alone(idp_server: IdpServer) -> None:
    claims = jwt.decode(idp_server.access_token("demo-service"),
                        options={"verify_signature": False})
    assert claims["sub"] == "demo-service" and claims["client_id"] == "demo-service"


def test_sts_credentials_work_with_boto3(idp_server: IdpServer) -> None:
    creds = idp_server.sts_credentials("bob", "Developer")
    who = _client(idp_server, "sts", creds).get_caller_identity()
    assert who["Arn"] == creds.assumed_role_arn
    assert who["Arn"].startswith("arn:aws:sts::111122223333:assumed-role/Developer/")


def test_sts_credentials_refuse_a_role_the_mapping_does_not_give(
        idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="does not give `bob` the role") as exc:
        idp_server.sts_credentials("bob", "Admin")
    assert exc.value.code == "AccessDenied"


def test_the_sts_itself_refuses_an_assertion_without_the_role(idp_server: IdpServer) -> None:
    """The kit's check is not the only one: bob's genuine assertion names no Admin role, and
    AssumeRoleWithSAML refuses it for Admin."""
    assertion = idp_server.saml_response(AWS_SP, "bob").saml_response
    resp = requests.post(idp_server.sts_url, timeout=5, data={
        "Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": ADMIN,
        "PrincipalArn": "arn:aws:iam::111122223333:saml-provider/demo-idp",
        "SAMLAssertion": assertion})
    assert resp.status_code == 403 and b"AccessDenied" in resp.content


def test_sts_session_policy_limits_the_credentials(idp_server: IdpServer) -> None:
    only_s3 = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    full = idp_server.sts_credentials("alice", "Admin")
    limited = idp_server.sts_credentials("alice", ADMIN, policy=only_s3)
    assert _client(idp_server, "iam", full).list_roles()["Roles"]
    with pytest.raises(ClientError) as exc:
        _client(idp_server, "iam", limited).list_roles()
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_saml_now_override_moves_every_instant(idp_server: IdpServer) -> None:
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice", now=1_700_000_000)
    assert f'IssueInstant="{instant(1_700_000_000)}"'.encode() in post.xml
    assert base64.b64decode(post.saml_response) == post.xml
