"""An independent relying party for the tests: requests-oauthlib for the protocol, PyJWT for
checking ID tokens against ``/oauth2/jwks`` (none of the provider's own code is used)."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from requests_oauthlib import OAuth2Session

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live test server is plain HTTP
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

WEB = ("demo-web", "demo-web-secret", "http://127.0.0.1:8400/callback")
SERVICE = ("demo-service", "demo-service-secret")
SCOPE = ["openid", "profile", "email", "groups", "roles"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CONTINUE = re.compile(r'<a href="([^"]+)" id="continue-link"')
_RESUME = re.compile(r'name="resume" value="([^"]+)"')


def cli_redirect(port: int = 53817) -> str:
    return f"http://127.0.0.1:{port}/callback"


def form_value(pattern: re.Pattern[str], html: str) -> str:
    m = pattern.search(html)
    assert m, f"no {pattern.pattern} in page: {html[:300]}"
    return m.group(1)


def login(browser: requests.Session, base: str, user: str = "alice",
          password: str | None = None, next_path: str = "/account",
          reauth: bool = False) -> requests.Response:
    """Sign in through the login form (as a browser would)."""
    extra = {"reauth": "1"} if reauth else {}
    page = browser.get(f"{base}/login", params={"next": next_path, **extra},
                       allow_redirects=False)
    token = form_value(_CSRF, page.text)
    return browser.post(f"{base}/login", data={
        "username": user, "password": password or f"{user}-password", "csrf_token": token,
        "next": next_path, **extra}, allow_redirects=False)


def follow_to_client(browser: requests.Session, url: str, *, consent: bool = True,
                     user: str = "alice", max_hops: int = 8) -> str:
    """Follow the browser through login and consent until it is sent off the IdP; return
    the URL it is sent to (the client's redirect URI with the response)."""
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    for _ in range(max_hops):
        if not url.startswith(base):
            return url
        r = browser.get(url, allow_redirects=False)
        if r.status_code in (302, 303):
            url = requests.compat.urljoin(url, r.headers["Location"])
            if urlsplit(url).path == "/login":
                query = parse_qs(urlsplit(url).query)
                r = login(browser, base, user, next_path=query["next"][0],
                          reauth="reauth" in query)
                url = requests.compat.urljoin(url, r.headers["Location"])
            continue
        if r.status_code == 200 and 'id="continue-link"' in r.text:
            url = html.unescape(form_value(_CONTINUE, r.text))
            continue
        if r.status_code == 200 and 'name="resume"' in r.text:
            r = browser.post(f"{base}/oauth2/authorize", data={
                "csrf_token": form_value(_CSRF, r.text), "resume": form_value(_RESUME, r.text),
                "decision": "allow" if consent else "deny"}, allow_redirects=False)
            url = (html.unescape(form_value(_CONTINUE, r.text)) if r.status_code == 200
                   else r.headers["Location"])
            continue
        raise AssertionError(f"unexpected page {r.status_code} at {url}: {r.text[:300]}")
    raise AssertionError("too many redirects")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class Verified:
    claims: dict[str, Any]
    header: dict[str, Any]


def verify_id_token(base: str, token: str, client_id: str, nonce: str | None,
                    access_token: str | None = None) -> Verified:
    """Check an ID token as an RP must (OIDC Core §3.1.3.7) with PyJWT and the JWKS."""
    jwks = jwt.PyJWKSet.from_dict(requests.get(f"{base}/oauth2/jwks", timeout=5).json())
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(token, key.key, algorithms=["RS256", "ES256"], audience=client_id,
                        issuer=base, options={"require": ["exp", "iat", "sub", "aud", "iss"]})
    assert claims.get("nonce") == nonce
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()[:16]
        assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return Verified(claims, header)


def code_flow(base: str, client: str, redirect_uri: str, *, secret: str | None = None,
              user: str = "alice", browser: requests.Session | None = None
              ) -> tuple[OAuth2Session, dict[str, Any], str]:
    """Authorization code + PKCE S256 with requests-oauthlib; returns (session, token, nonce)."""
    browser = browser or requests.Session()
    nonce = secrets.token_urlsafe(16)
    rp = OAuth2Session(client, redirect_uri=redirect_uri, scope=SCOPE, pkce="S256")
    url, state = rp.authorization_url(f"{base}/oauth2/authorize", nonce=nonce)
    landed = follow_to_client(browser, url, user=user)
    query = parse_qs(urlsplit(landed).query)
    assert query["state"] == [state] and query["iss"] == [base]  # RFC 9207
    kwargs: dict[str, Any] = ({"client_secret": secret} if secret else
                              {"include_client_id": True})
    token = rp.fetch_token(f"{base}/oauth2/token", authorization_response=landed, **kwargs)
    return rp, dict(token), nonce
