"""Conformance points: native-client loopback redirects (RFC 8252 §7.3, RFC 9700 §4.1.3),
``id_token_hint`` (RP-Initiated Logout 1.0 §2, §4), and which client may introspect, refresh
or revoke which token (RFC 7662 §4, RFC 6749 §10.4, RFC 7009 §2.1)."""

from __future__ import annotations

import html
from typing import Any

import jwt
import pytest
import requests

from idp.config import OidcClientConfig
from idp.oidc.clients import Client
from tests.fixtures.live import LiveIdp
from tests.oidc import rp
from tests.oidc.test_security import (
    WEB_ID,
    WEB_SECRET,
    authorize_url,
    cli_params,
    get_code,
    redeem_web,
    userinfo,
    web_params,
)

HINT = "`http://127.0.0.1:<port>/callback` or `http://[::1]:<port>/callback`"

# -- loopback redirects of native clients: only the port may vary --------------------------


@pytest.mark.parametrize("uri", [
    pytest.param("http://evil.com@127.0.0.1:9/callback", id="userinfo-before-loopback"),
    pytest.param("http://127.0.0.1:9@evil.com/callback", id="loopback-as-userinfo"),
    pytest.param("http://127.0.0.1:/callback", id="empty-port"),
    pytest.param("HTTP://127.0.0.1:9/callback", id="uppercase-scheme"),
    pytest.param("Http://127.0.0.1:9/callback", id="mixed-case-scheme"),
    pytest.param("https://127.0.0.1:9/callback", id="other-scheme"),
    pytest.param("http://127.0.0.1:9/other", id="other-path"),
    pytest.param("http://127.0.0.1:9/Callback", id="path-case"),
    pytest.param("http://127.0.0.1:9/call%62ack", id="percent-encoded-path"),
    pytest.param("http://127.0.0.1:9/callback/", id="trailing-slash"),
    pytest.param("http://127.0.0.1:9/callback?x=1", id="added-query"),
    pytest.param("http://127.0.0.1:9/callback#frag", id="fragment"),
    pytest.param("http://127.0.0.1.evil.com:9/callback", id="loopback-as-subdomain"),
    pytest.param("http://localhost:9/callback", id="localhost-not-registered"),
    pytest.param("http://LOCALHOST:9/callback", id="localhost-uppercase"),
    pytest.param("http://127.1:9/callback", id="ipv4-short-form"),
    pytest.param("http://2130706433:9/callback", id="ipv4-as-integer"),
    pytest.param("http://0x7f.0.0.1:9/callback", id="ipv4-hex"),
    pytest.param("http://127.0.0.2:9/callback", id="other-loopback-address"),
    pytest.param("http://[::ffff:127.0.0.1]:9/callback", id="ipv4-mapped-ipv6"),
    pytest.param("http://[0:0:0:0:0:0:0:1]:9/callback", id="ipv6-long-form"),
    pytest.param("http://127.0.0.1:09/callback", id="port-leading-zero"),
    pytest.param("http://127.0.0.1:65536/callback", id="port-out-of-range"),
    pytest.param("http://127.0.0.1:\u0669/callback", id="port-non-ascii-digit"),
    pytest.param("http://127.0.0.1:9\\@evil.com/callback", id="backslash-trick"),
])
def test_loopback_redirect_differing_beyond_the_port_is_refused(demo_idp: LiveIdp,
                                                               uri: str) -> None:
    r = requests.get(authorize_url(demo_idp.url, **cli_params(redirect_uri=uri)), timeout=5,
                     allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "text/html" in r.headers["Content-Type"]
    assert HINT in html.unescape(r.text)  # says which form is accepted


@pytest.mark.parametrize("uri", [
    pytest.param("http://127.0.0.1:50123/callback", id="ipv4-loopback-any-port"),
    pytest.param("http://[::1]:50123/callback", id="ipv6-loopback-any-port"),
    pytest.param("http://127.0.0.1/callback", id="registered-uri-exactly"),
])
def test_loopback_redirect_with_only_the_port_changed_completes_the_flow(
        demo_idp: LiveIdp, uri: str) -> None:
    verifier, challenge = rp.pkce_pair()
    code = get_code(demo_idp.url, cli_params(redirect_uri=uri, code_challenge=challenge))
    r = requests.post(f"{demo_idp.url}/oauth2/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": uri,
        "client_id": "demo-cli", "code_verifier": verifier})
    assert r.status_code == 200 and "id_token" in r.json()


def _native(*uris: str) -> Client:
    return Client(OidcClientConfig(client_id="n", token_endpoint_auth_method="none",
                                   native=True, redirect_uris=list(uris)))


@pytest.mark.parametrize("registered, presented, ok", [
    pytest.param("http://localhost/cb", "http://localhost:8080/cb", True,
                 id="localhost-when-registered"),
    pytest.param("http://localhost/cb", "http://127.0.0.1:8080/cb", False,
                 id="localhost-registration-is-not-an-ip"),
    pytest.param("http://[::1]/cb", "http://127.0.0.1:8080/cb", True,
                 id="ipv6-registration-admits-ipv4"),
    pytest.param("http://127.0.0.1/cb?app=x", "http://127.0.0.1:8080/cb?app=x", True,
                 id="registered-query-kept"),
    pytest.param("http://127.0.0.1/cb?app=x", "http://127.0.0.1:8080/cb?app=y", False,
                 id="registered-query-changed"),
    pytest.param("http://127.0.0.1:7000/cb", "http://127.0.0.1:8080/cb", False,
                 id="registered-with-a-port-is-exact"),
    pytest.param("http://127.0.0.1/cb", "http://127.0.0.1:8080/cb\n", False,
                 id="trailing-newline"),
])
def test_loopback_rule_for_registered_forms(registered: str, presented: str,
                                            ok: bool) -> None:
    assert _native(registered).redirect_uri_ok(presented) is ok


def test_any_port_is_only_for_native_clients() -> None:
    web = Client(OidcClientConfig(client_id="w", client_secret="s",
                                  redirect_uris=["http://127.0.0.1/cb"]))
    assert not web.redirect_uri_ok("http://127.0.0.1:8080/cb")
    assert web.redirect_uri_hint() == "redirect_uri is not registered for this client"


# -- RP-initiated logout: id_token_hint must be an ID token ----------------------------------

def _signed_in_with_tokens(idp: LiveIdp) -> tuple[requests.Session, dict[str, Any]]:
    browser = requests.Session()
    tokens = redeem_web(idp.url, get_code(idp.url, web_params(), browser)).json()
    return browser, tokens


def _resigned_as_jwt(idp: LiveIdp, token: str) -> str:
    """The access token's claims, signed by the IdP's own key as ``typ: JWT`` (a JWT we
    signed that is not an ID token)."""
    key = idp.components.keys.active("RS256")
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key.private_key, "RS256", headers={"kid": key.kid, "typ": "JWT"})


@pytest.mark.parametrize("case", ["access-token", "access-token-claims-as-typ-jwt"])
def test_logout_refuses_a_hint_that_is_not_an_id_token(demo_idp: LiveIdp, case: str) -> None:
    browser, tokens = _signed_in_with_tokens(demo_idp)
    hint = tokens["access_token"] if case == "access-token" else \
        _resigned_as_jwt(demo_idp, tokens["access_token"])
    for params in ({"id_token_hint": hint},
                   {"id_token_hint": hint, "post_logout_redirect_uri": "http://127.0.0.1:8400/"}):
        r = browser.get(f"{demo_idp.url}/oauth2/logout", params=params, allow_redirects=False)
        assert r.status_code == 400 and "Location" not in r.headers
        assert "id_token_hint is not an id token" in r.text
    assert browser.get(f"{demo_idp.url}/account", allow_redirects=False).status_code == 200


def test_logout_with_the_id_token_as_hint_still_ends_the_session(demo_idp: LiveIdp) -> None:
    """Control for the case above: the same session, its real ID token."""
    browser, tokens = _signed_in_with_tokens(demo_idp)
    r = browser.get(f"{demo_idp.url}/oauth2/logout", allow_redirects=False,
                    params={"id_token_hint": tokens["id_token"]})
    assert r.status_code == 200
    assert browser.get(f"{demo_idp.url}/account", allow_redirects=False).status_code == 302


# -- which client learns about, refreshes or revokes which token ----------------------------

def _introspect(idp: LiveIdp, token: str, auth: tuple[str, str]) -> dict[str, Any]:
    r = requests.post(f"{idp.url}/oauth2/introspect", data={"token": token}, auth=auth,
                      timeout=5)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def _refresh(idp: LiveIdp, token: str, **client: Any) -> requests.Response:
    return requests.post(f"{idp.url}/oauth2/token", timeout=5, auth=client.pop("auth", None),
                         data={"grant_type": "refresh_token", "refresh_token": token, **client})


def test_introspection_of_another_clients_refresh_token_is_inactive(demo_idp: LiveIdp) -> None:
    _, tokens = _signed_in_with_tokens(demo_idp)
    assert _introspect(demo_idp, tokens["refresh_token"], rp.SERVICE) == {"active": False}
    own = _introspect(demo_idp, tokens["refresh_token"], (WEB_ID, WEB_SECRET))
    assert own["active"] is True and own["client_id"] == WEB_ID


def test_resource_servers_introspect_access_tokens_of_other_clients(demo_idp: LiveIdp) -> None:
    _, tokens = _signed_in_with_tokens(demo_idp)
    seen = _introspect(demo_idp, tokens["access_token"], rp.SERVICE)
    assert seen["active"] is True and seen["client_id"] == WEB_ID


def test_id_tokens_are_never_introspected_as_active(demo_idp: LiveIdp) -> None:
    _, tokens = _signed_in_with_tokens(demo_idp)
    for auth in (rp.SERVICE, (WEB_ID, WEB_SECRET)):
        assert _introspect(demo_idp, tokens["id_token"], auth) == {"active": False}


def test_foreign_client_presenting_a_refresh_token_neither_uses_nor_revokes_it(
        demo_idp: LiveIdp) -> None:
    _, tokens = _signed_in_with_tokens(demo_idp)
    foreign = _refresh(demo_idp, tokens["refresh_token"], client_id="demo-cli")
    unknown = _refresh(demo_idp, "never-issued", client_id="demo-cli")
    assert foreign.status_code == 400 and foreign.json() == unknown.json()  # learns nothing
    assert userinfo(demo_idp.url, tokens["access_token"]).status_code == 200
    owner = _refresh(demo_idp, tokens["refresh_token"], auth=(WEB_ID, WEB_SECRET))
    assert owner.status_code == 200 and "refresh_token" in owner.json()
    assert any(e["eventName"] == "OidcTokenRefused" and e["errorCode"] == "invalid_grant"
               for e in demo_idp.audit.records)


def test_foreign_client_cannot_revoke_another_clients_refresh_token(demo_idp: LiveIdp) -> None:
    _, tokens = _signed_in_with_tokens(demo_idp)
    r = requests.post(f"{demo_idp.url}/oauth2/revoke", data={"token": tokens["refresh_token"]},
                      auth=rp.SERVICE, timeout=5)
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    assert _refresh(demo_idp, tokens["refresh_token"], auth=(WEB_ID, WEB_SECRET)).ok


def test_rotated_out_refresh_token_from_any_client_revokes_the_family(
        demo_idp: LiveIdp) -> None:
    """A token its owner has already rotated out can only have leaked (RFC 9700 §4.14.2),
    whoever presents it."""
    _, tokens = _signed_in_with_tokens(demo_idp)
    newer = _refresh(demo_idp, tokens["refresh_token"], auth=(WEB_ID, WEB_SECRET)).json()
    assert _refresh(demo_idp, tokens["refresh_token"], client_id="demo-cli").status_code == 400
    assert _refresh(demo_idp, newer["refresh_token"], auth=(WEB_ID, WEB_SECRET)).json()[
        "error"] == "invalid_grant"
    assert userinfo(demo_idp.url, newer["access_token"]).status_code == 401
