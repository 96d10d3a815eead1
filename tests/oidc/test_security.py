"""Attacks and rules from RFC 9700 (OAuth 2.0 Security BCP), RFC 6749/7636/9207 and the
OpenID conformance suite's OP tests, each a named case against the live demo server."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idp.demo import demo_config
from idp.keys import rotate_keys
from idp.store.memory import MemoryStore
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.oidc import rp

CLI = rp.cli_redirect(50111)
WEB_ID, WEB_SECRET, WEB_URI = rp.WEB


def authorize_url(base: str, **params: str) -> str:
    return f"{base}/oauth2/authorize?" + urlencode(params)


def web_params(**extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": WEB_ID, "redirect_uri": WEB_URI,
            "scope": "openid profile", "state": "st-1", **extra}


def cli_params(**extra: str) -> dict[str, str]:
    _, challenge = rp.pkce_pair()
    return {"response_type": "code", "client_id": "demo-cli", "redirect_uri": CLI,
            "scope": "openid", "state": "st-2", "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def get_code(base: str, params: dict[str, str], browser: requests.Session | None = None,
             user: str = "alice") -> str:
    landed = rp.follow_to_client(browser or requests.Session(), authorize_url(base, **params),
                                 user=user)
    return parse_qs(urlsplit(landed).query)["code"][0]


def redeem_web(base: str, code: str, **extra: str) -> requests.Response:
    return requests.post(f"{base}/oauth2/token", auth=(WEB_ID, WEB_SECRET), timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": WEB_URI, **extra})


def userinfo(base: str, token: str) -> requests.Response:
    return requests.get(f"{base}/oauth2/userinfo", timeout=5,
                        headers={"Authorization": f"Bearer {token}"})


# -- codes --------------------------------------------------------------------------------

def test_code_reuse_is_refused_and_revokes_tokens_of_first_use(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    code = get_code(base, web_params())
    first = redeem_web(base, code).json()
    assert userinfo(base, first["access_token"]).status_code == 200
    second = redeem_web(base, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert userinfo(base, first["access_token"]).status_code == 401
    r = requests.post(f"{base}/oauth2/token", auth=(WEB_ID, WEB_SECRET), timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    code = get_code(base, web_params())
    r = requests.post(f"{base}/oauth2/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": WEB_URI,
        "client_id": "demo-cli"})
    assert r.json()["error"] == "invalid_grant"


def test_code_lifetime_is_short(demo_idp: LiveIdp) -> None:
    assert demo_idp.config.oidc.code_ttl <= 60
    code = get_code(demo_idp.url, web_params())
    from idp.oidc.state import family_key
    ttl = demo_idp.components.store.ttl(family_key("code", code))
    assert ttl is not None and 0 < ttl <= 60


# -- redirect URIs: shown to the user, never redirected to ------------------------------

@pytest.mark.parametrize("client, uri", [
    pytest.param(WEB_ID, "http://127.0.0.1:8401/callback", id="redirect-uri-mismatch-port"),
    pytest.param(WEB_ID, WEB_URI + "?x=1", id="redirect-uri-added-query"),
    pytest.param(WEB_ID, WEB_URI + "#frag", id="redirect-uri-fragment"),
    pytest.param(WEB_ID, "https://evil.example/callback", id="redirect-uri-unregistered"),
    pytest.param(WEB_ID, "http://127.0.0.1:8400/callback/../evil", id="redirect-uri-path-trick"),
    pytest.param("demo-cli", "http://localhost:5000/callback", id="loopback-name-not-ip"),
    pytest.param("demo-cli", "http://127.0.0.1:5000/other", id="loopback-other-path"),
    pytest.param("demo-cli", "https://127.0.0.1:5000/callback", id="loopback-other-scheme"),
    pytest.param("nope", WEB_URI, id="unknown-client-id"),
])
def test_bad_client_or_redirect_uri_is_shown_not_redirected(demo_idp: LiveIdp, client: str,
                                                             uri: str) -> None:
    params = {**cli_params(), "client_id": client, "redirect_uri": uri}
    r = requests.get(authorize_url(demo_idp.url, **params), timeout=5, allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "text/html" in r.headers["Content-Type"]


def test_loopback_any_port_only_for_native_clients(demo_idp: LiveIdp) -> None:
    browser = requests.Session()
    rp.login(browser, demo_idp.url, "alice")
    ok = browser.get(authorize_url(demo_idp.url, **cli_params()), allow_redirects=False)
    assert ok.status_code == 200  # consent page: the native client's any-port loopback is fine
    r = browser.get(authorize_url(demo_idp.url, **web_params(
        redirect_uri="http://127.0.0.1:9999/callback")), allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers


# -- errors that go back to the client, with iss and state (RFC 9207) -------------------

def _redirected_error(r: requests.Response, base: str) -> dict[str, list[str]]:
    assert r.status_code == 302, r.text[:200]
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["iss"] == [base]
    return q


@pytest.mark.parametrize("params, error", [
    pytest.param(cli_params(code_challenge="", code_challenge_method=""), "invalid_request",
                 id="pkce-missing-public-client"),
    pytest.param(cli_params(code_challenge_method="plain"), "invalid_request", id="pkce-plain"),
    pytest.param(web_params(response_type="token"), "unsupported_response_type",
                 id="implicit-grant-refused"),
    pytest.param(web_params(response_type="id_token token"), "unsupported_response_type",
                 id="hybrid-refused"),
    pytest.param(web_params(scope="openid admin"), "invalid_scope", id="unknown-scope"),
    pytest.param(web_params(prompt="none"), "login_required", id="prompt-none-without-session"),
    pytest.param(web_params(prompt="none login"), "invalid_request", id="prompt-none-mixed"),
    pytest.param(web_params(request="eyJ.x.y"), "request_not_supported", id="request-object"),
])
def test_authorization_errors_redirect_with_iss_and_state(demo_idp: LiveIdp,
                                                          params: dict[str, str],
                                                          error: str) -> None:
    r = requests.get(authorize_url(demo_idp.url, **params), timeout=5, allow_redirects=False)
    q = _redirected_error(r, demo_idp.url)
    assert q["error"] == [error] and q["state"] == [params["state"]]
    assert any(e["eventName"] == "OidcAuthorizeRefused" for e in demo_idp.audit.records)


def test_prompt_none_without_consent_is_consent_required(demo_idp: LiveIdp) -> None:
    browser = requests.Session()
    rp.login(browser, demo_idp.url, "bob")
    r = browser.get(authorize_url(demo_idp.url, **web_params(prompt="none")),
                    allow_redirects=False)
    assert _redirected_error(r, demo_idp.url)["error"] == ["consent_required"]


def test_consent_is_remembered_per_client_and_scope(demo_idp: LiveIdp) -> None:
    base, browser = demo_idp.url, requests.Session()
    get_code(base, web_params(), browser)  # consents to openid profile
    r = browser.get(authorize_url(base, **web_params(prompt="none")), allow_redirects=False)
    assert "code" in parse_qs(urlsplit(r.headers["Location"]).query)
    wider = browser.get(authorize_url(base, **web_params(scope="openid profile email")),
                        allow_redirects=False)
    assert wider.status_code == 200 and 'name="resume"' in wider.text  # asks again
    again = browser.get(authorize_url(base, **web_params(prompt="consent")),
                        allow_redirects=False)
    assert again.status_code == 200 and 'name="resume"' in again.text


def test_consent_denied_is_access_denied(demo_idp: LiveIdp) -> None:
    landed = rp.follow_to_client(requests.Session(), authorize_url(demo_idp.url, **web_params()),
                                 consent=False)
    assert parse_qs(urlsplit(landed).query)["error"] == ["access_denied"]


def test_prompt_login_and_max_age_force_a_new_login(demo_idp: LiveIdp) -> None:
    base, browser = demo_idp.url, requests.Session()
    get_code(base, web_params(), browser)
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        time.sleep(1.1)
        r = browser.get(authorize_url(base, **web_params(**extra)), allow_redirects=False)
        assert urlsplit(r.headers["Location"]).path == "/login"
        assert "reauth=1" in r.headers["Location"]
        code = get_code(base, web_params(**extra), browser)
        idt = jwt.decode(redeem_web(base, code).json()["id_token"],
                         options={"verify_signature": False})
        assert time.time() - idt["auth_time"] < 3


def test_form_post_response_mode(demo_idp: LiveIdp) -> None:
    base, browser = demo_idp.url, requests.Session()
    get_code(base, web_params(), browser)
    r = browser.get(authorize_url(base, **web_params(response_mode="form_post")),
                    allow_redirects=False)
    assert r.status_code == 200 and f'action="{WEB_URI}"' in r.text
    assert 'name="code"' in r.text and 'name="iss"' in r.text
    assert "form-action http://127.0.0.1:8400" in r.headers["Content-Security-Policy"]


# -- PKCE at the token endpoint (RFC 7636 §4.6, RFC 9700 §2.1.1) ----------------------------

def test_pkce_wrong_verifier(demo_idp: LiveIdp) -> None:
    code = get_code(demo_idp.url, cli_params())
    r = requests.post(f"{demo_idp.url}/oauth2/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLI,
        "client_id": "demo-cli", "code_verifier": rp.pkce_pair()[0]})
    assert r.json()["error"] == "invalid_grant"


def test_pkce_verifier_missing_when_challenge_was_sent(demo_idp: LiveIdp) -> None:
    code = get_code(demo_idp.url, cli_params())
    r = requests.post(f"{demo_idp.url}/oauth2/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLI,
        "client_id": "demo-cli"})
    assert r.json()["error"] == "invalid_grant"


def test_pkce_downgrade_verifier_without_challenge(demo_idp: LiveIdp) -> None:
    code = get_code(demo_idp.url, web_params())  # confidential client, no challenge sent
    r = redeem_web(demo_idp.url, code, code_verifier=rp.pkce_pair()[0])
    assert r.json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_at_token_endpoint(demo_idp: LiveIdp) -> None:
    code = get_code(demo_idp.url, web_params())
    r = requests.post(f"{demo_idp.url}/oauth2/token", auth=(WEB_ID, WEB_SECRET), timeout=5,
                      data={"grant_type": "authorization_code", "code": code,
                            "redirect_uri": WEB_URI + "?x"})
    assert r.json()["error"] == "invalid_grant"


# -- refresh tokens ----------------------------------------------------------------------------

def test_refresh_token_reuse_revokes_the_family(demo_idp: LiveIdp) -> None:
    base = demo_idp.url
    first = redeem_web(base, get_code(base, web_params())).json()

    def refresh(token: str) -> requests.Response:
        return requests.post(f"{base}/oauth2/token", auth=(WEB_ID, WEB_SECRET), timeout=5,
                             data={"grant_type": "refresh_token", "refresh_token": token})

    second = refresh(first["refresh_token"]).json()
    assert userinfo(base, second["access_token"]).status_code == 200
    reuse = refresh(first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo(base, second["access_token"]).status_code == 401
    assert any(e.get("errorCode") == "invalid_grant" for e in demo_idp.audit.records)


# -- grants and client authentication ----------------------------------------------------------

@pytest.mark.parametrize("data, auth, error, status", [
    pytest.param({"grant_type": "password", "username": "alice", "password": "alice-password"},
                 (WEB_ID, WEB_SECRET), "unsupported_grant_type", 400, id="password-grant"),
    pytest.param({"grant_type": "client_credentials"}, (WEB_ID, WEB_SECRET),
                 "unauthorized_client", 400, id="grant-not-registered-for-client"),
    pytest.param({"grant_type": "client_credentials"}, ("demo-service", "wrong"),
                 "invalid_client", 401, id="wrong-secret"),
    pytest.param({"grant_type": "client_credentials", "client_id": "demo-service",
                  "client_secret": "demo-service-secret"}, None, "invalid_client", 401,
                 id="secret-post-for-basic-client"),
    pytest.param({"grant_type": "client_credentials", "client_id": "demo-cli"}, None,
                 "unauthorized_client", 400, id="public-client-credentials"),
    pytest.param({"grant_type": "client_credentials", "scope": "openid"},
                 ("demo-service", "demo-service-secret"), "invalid_scope", 400,
                 id="client-credentials-openid-scope"),
])
def test_token_endpoint_refusals(demo_idp: LiveIdp, data: dict[str, str], auth: Any,
                                 error: str, status: int) -> None:
    r = requests.post(f"{demo_idp.url}/oauth2/token", data=data, auth=auth, timeout=5)
    assert (r.status_code, r.json()["error"]) == (status, error)
    assert r.headers["Cache-Control"] == "no-store"


# -- forged and stale tokens at userinfo and introspection --------------------------------------

def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(idp: LiveIdp, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": idp.url, "aud": idp.url, "sub": "x", "exp": now + 300, "iat": now,
            "jti": "j-" + str(now), "scope": "openid profile", "client_id": WEB_ID,
            "auth_time": now, **over}


def forged(idp: LiveIdp, case: str) -> str:
    active = idp.components.keys.active("RS256")
    hdr = {"kid": active.kid, "typ": "at+jwt"}
    if case == "alg-none":
        return _b64({"alg": "none", **hdr}) + "." + _b64(_claims(idp)) + "."
    if case == "hs256-with-public-key":
        pub = active.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = _b64({"alg": "HS256", **hdr})
        body = _b64(_claims(idp))
        import hashlib
        import hmac
        sig = hmac.new(pub, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    if case == "unknown-kid":
        other = rsa.generate_private_key(65537, 2048)
        return jwt.encode(_claims(idp), other, "RS256", headers={"kid": "nope", "typ": "at+jwt"})
    if case == "foreign-key-with-our-kid":
        other = rsa.generate_private_key(65537, 2048)
        return jwt.encode(_claims(idp), other, "RS256", headers=hdr)
    changes: dict[str, dict[str, Any]] = {
        "expired": {"exp": int(time.time()) - 10},
        "wrong-audience": {"aud": "https://other.example"},
        "wrong-issuer": {"iss": "https://other.example"}}
    over = changes.get(case, {})
    headers = {"kid": active.kid, "typ": "JWT" if case == "id-token-as-access-token"
               else "at+jwt"}
    return jwt.encode(_claims(idp, **over), active.private_key, "RS256", headers=headers)


BAD_TOKENS = ["alg-none", "hs256-with-public-key", "unknown-kid", "foreign-key-with-our-kid",
              "expired", "wrong-audience", "wrong-issuer", "id-token-as-access-token"]


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_tokens_rejected_by_userinfo_and_introspection(demo_idp: LiveIdp,
                                                           case: str) -> None:
    token = forged(demo_idp, case)
    r = userinfo(demo_idp.url, token)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    i = requests.post(f"{demo_idp.url}/oauth2/introspect", data={"token": token},
                      auth=rp.SERVICE, timeout=5)
    assert i.json() == {"active": False}


def test_control_well_formed_token_is_accepted(demo_idp: LiveIdp) -> None:
    """The forging helper makes valid tokens when nothing is wrong (so the cases above fail
    for the reason they name)."""
    token = forged(demo_idp, "valid")
    assert userinfo(demo_idp.url, token).status_code == 200
    assert requests.post(f"{demo_idp.url}/oauth2/introspect", data={"token": token},
                         auth=rp.SERVICE, timeout=5).json()["active"] is True


# -- logout ----------------------------------------------------------------------------------

def test_rp_initiated_logout_ends_the_idp_session(demo_idp: LiveIdp) -> None:
    base, browser = demo_idp.url, requests.Session()
    tokens = redeem_web(base, get_code(base, web_params(), browser)).json()
    assert browser.get(f"{base}/account", allow_redirects=False).status_code == 200
    r = browser.get(f"{base}/oauth2/logout", allow_redirects=False, params={
        "id_token_hint": tokens["id_token"], "state": "bye",
        "post_logout_redirect_uri": "http://127.0.0.1:8400/"})
    assert r.status_code == 302 and r.headers["Location"] == "http://127.0.0.1:8400/?state=bye"
    assert browser.get(f"{base}/account", allow_redirects=False).status_code == 302
    assert "Logout" in [e["eventName"] for e in demo_idp.audit.records] or \
        "OidcLogout" in [e["eventName"] for e in demo_idp.audit.records]


def test_logout_refuses_unregistered_post_logout_uri(demo_idp: LiveIdp) -> None:
    base, browser = demo_idp.url, requests.Session()
    tokens = redeem_web(base, get_code(base, web_params(), browser)).json()
    r = browser.get(f"{base}/oauth2/logout", allow_redirects=False, params={
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example/"})
    assert r.status_code == 400 and "Location" not in r.headers
    assert browser.get(f"{base}/account", allow_redirects=False).status_code == 200


def test_logout_without_hint_asks_before_ending_the_session(demo_idp: LiveIdp) -> None:
    base, browser = demo_idp.url, requests.Session()
    rp.login(browser, base, "bob")
    page = browser.get(f"{base}/oauth2/logout", allow_redirects=False)
    assert page.status_code == 200 and 'id="confirm-logout"' in page.text
    assert browser.get(f"{base}/account", allow_redirects=False).status_code == 200
    browser.post(f"{base}/oauth2/logout", data={"csrf_token": rp.form_value(rp._CSRF, page.text)})
    assert browser.get(f"{base}/account", allow_redirects=False).status_code == 302


# -- key rotation, across a restart on the same store ----------------------------------------

def test_key_rotation_tokens_of_previous_key_still_verify(tmp_path: Path,
                                                          demo_keys_dir: Path) -> None:
    keys = tmp_path / "keys"
    shutil.copytree(demo_keys_dir, keys)
    store = MemoryStore()
    port = free_port()
    cfg = demo_config(port, keys_dir=keys, metadata_dirs=[tmp_path / "md"], audit="none")
    with live_idp(cfg, demo=True, port=port, store=store) as idp:
        r = requests.post(f"{idp.url}/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=rp.SERVICE, timeout=5)
        old = r.json()["access_token"]
        old_kid = jwt.get_unverified_header(old)["kid"]
    rotate_keys(keys)
    with live_idp(cfg, demo=True, port=port, store=store) as idp:
        jwks = {k["kid"] for k in requests.get(f"{idp.url}/oauth2/jwks", timeout=5).json()["keys"]}
        assert old_kid in jwks  # retired, still published
        i = requests.post(f"{idp.url}/oauth2/introspect", data={"token": old},
                          auth=rp.SERVICE, timeout=5).json()
        assert i["active"] is True
        new = requests.post(f"{idp.url}/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=rp.SERVICE, timeout=5).json()["access_token"]
        assert jwt.get_unverified_header(new)["kid"] != old_kid
    rotate_keys(keys)  # the old key leaves the JWKS: its tokens stop verifying
    with live_idp(cfg, demo=True, port=port, store=store) as idp:
        i = requests.post(f"{idp.url}/oauth2/introspect", data={"token": old},
                          auth=rp.SERVICE, timeout=5).json()
        assert i == {"active": False}
