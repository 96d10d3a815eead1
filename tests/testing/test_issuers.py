"""Several issuers in one kit server, an issuer per path, each with its own keys, users,
clients, sessions and record."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
import requests

from idp.testing import IdpServer, KitError, User
from tests.testing import onelogin


@pytest.fixture(scope="module")
def server() -> Iterator[IdpServer]:
    acme = {"users": [User(username="dave", groups=["engineering"])],
            "saml_sps": [onelogin.kit_sp()]}
    with IdpServer(issuers={"acme": acme}) as idp:
        yield idp


@pytest.fixture
def acme(server: IdpServer) -> IdpServer:
    server.reset()
    return server.issuers["acme"]


def test_each_issuer_publishes_its_own_url_and_keys(server: IdpServer, acme: IdpServer) -> None:
    disc = requests.get(acme.url + "/.well-known/openid-configuration", timeout=5).json()
    assert disc["issuer"] == acme.issuer == server.url + "/acme"
    assert disc["token_endpoint"] == server.url + "/acme/oauth2/token"
    root_kids = {k["kid"] for k in requests.get(server.url + "/oauth2/jwks", timeout=5)
                 .json()["keys"]}
    acme_kids = {k["kid"] for k in requests.get(acme.url + "/oauth2/jwks", timeout=5)
                 .json()["keys"]}
    assert acme_kids and not root_kids & acme_kids


def test_each_issuer_has_its_own_users(server: IdpServer, acme: IdpServer) -> None:
    assert "dave" in acme.login("dave").get(acme.url + "/account", timeout=5).text
    with pytest.raises(KitError):
        server.login("dave")
    with pytest.raises(KitError):
        acme.login("alice")


def test_tokens_verify_only_with_their_issuers_keys(server: IdpServer, acme: IdpServer) -> None:
    token = acme.id_token("demo-web", "dave")
    key = jwt.PyJWKClient(acme.url + "/oauth2/jwks").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="demo-web",
                        issuer=acme.issuer)
    assert claims["preferred_username"] == "dave"
    with pytest.raises(jwt.PyJWKClientError):
        jwt.PyJWKClient(server.url + "/oauth2/jwks").get_signing_key_from_jwt(token)


def test_sessions_do_not_cross_issuers(server: IdpServer, acme: IdpServer) -> None:
    s = server.login("alice")
    page = s.get(acme.url + "/account", timeout=5)
    assert page.url.startswith(acme.url + "/login") and 'name="password"' in page.text


def test_pages_and_redirects_stay_under_the_issuers_path(acme: IdpServer) -> None:
    page = requests.get(acme.url + "/account", timeout=5)
    assert page.history[0].headers["Location"].startswith("/acme/login")
    assert 'action="/acme/login"' in page.text and 'href="/acme/static/style.css"' in page.text
    acme.next_login("dave")
    assert "dave" in requests.get(acme.url + "/login?next=/account", timeout=5).text


def test_saml_from_an_issuer_is_accepted_with_its_metadata(acme: IdpServer) -> None:
    post = acme.saml_response(onelogin.SP_ENTITY, "dave")
    verdict = onelogin.verify(acme, post.saml_response)
    assert verdict.valid, verdict.error
    assert acme.saml_entity_id == acme.url + "/saml/metadata"


def test_sts_credentials_from_an_issuer(acme: IdpServer) -> None:
    creds = acme.sts_credentials("dave", "Developer")
    assert "assumed-role/Developer/" in creds.assumed_role_arn


def test_each_issuer_records_its_own_requests(server: IdpServer, acme: IdpServer) -> None:
    requests.get(acme.url + "/healthz", timeout=5)
    assert [r.path for r in acme.requests()] == ["/healthz"]
    assert server.requests() == []


def test_issuer_names_are_checked() -> None:
    with pytest.raises(KitError, match="issuer name `Bad/Name`"):
        IdpServer(issuers={"Bad/Name": None})
