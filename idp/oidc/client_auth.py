"""Client authentication at the token, introspection, revocation and device endpoints:
``client_secret_basic`` and ``client_secret_post`` (RFC 6749 §2.3.1), ``private_key_jwt``
(OIDC Core §9, RFC 7523 §2.2/§3, with ``jti`` replay protection) and ``none`` for public
clients (RFC 6749 §2.1).  A client must use the one method it registered.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from joserfc import jwt
from joserfc.errors import JoseError

from idp.oidc.clients import Client
from idp.oidc.core import Core, OAuthRequest
from idp.oidc.errors import OAuthError, invalid_request
from idp.oidc.jose import unverified_claims, unverified_header

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("RS256", "ES256", "PS256")
_SKEW = 60


def _basic(header: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "malformed basic credentials") from exc
    cid, sep, secret = raw.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64
    return unquote(cid.replace("+", " ")), unquote(secret.replace("+", " "))


def authenticate(core: Core, req: OAuthRequest, endpoint: str) -> Client:
    """The authenticated client, or ``invalid_client`` (401)."""
    auth = req.authorization or ""
    basic = auth[:6].lower() == "basic "
    post_secret = req.get("client_secret")
    assertion = req.get("client_assertion")
    if sum(map(bool, (basic, post_secret, assertion))) > 1:
        raise invalid_request("more than one client authentication method")
    if basic:
        cid, secret = _basic(auth)
        return _secret(core, req, cid, secret, "client_secret_basic")
    if post_secret:
        return _secret(core, req, req.get("client_id"), post_secret, "client_secret_post")
    if assertion:
        return _assertion(core, req, assertion, endpoint)
    client = core.clients.get(req.get("client_id"))
    if client is None or client.auth_method != "none":
        raise OAuthError("invalid_client", "client authentication failed",
                         debug=f"no credentials for `{req.get('client_id')}`")
    return client


def _secret(core: Core, req: OAuthRequest, cid: str | None, secret: str, method: str) -> Client:
    client = core.clients.get(cid)
    if client is None or client.auth_method != method or not core.clients.secret_ok(client,
                                                                                    secret):
        raise OAuthError("invalid_client", "client authentication failed",
                         debug=f"{method} failed for `{cid}`")
    if req.get("client_id") not in (None, client.client_id):
        raise OAuthError("invalid_client", "client_id does not match the credentials")
    return client


def _assertion(core: Core, req: OAuthRequest, assertion: str, endpoint: str) -> Client:
    """Verify a ``private_key_jwt`` client assertion (RFC 7523 §3).  Header and claims must
    be JSON objects (RFC 7515 §4, RFC 7519 §7.2) before any key is looked up."""
    if req.get("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthError("invalid_client", "unsupported client_assertion_type")
    try:
        header, unverified = unverified_header(assertion), unverified_claims(assertion)
    except OAuthError as exc:
        raise OAuthError("invalid_client", "malformed client assertion",
                         debug=exc.debug) from exc
    if header.get("alg") not in ASSERTION_ALGS:
        raise OAuthError("invalid_client", "client assertion rejected",
                         debug=f"alg {str(header.get('alg'))[:32]}")
    iss = unverified.get("iss")
    named = core.clients.get(iss if isinstance(iss, str) else None)
    if named is None or named.keyset is None:
        raise OAuthError("invalid_client", "client assertion rejected", debug="unknown issuer")
    try:
        claims = jwt.decode(assertion, named.keyset, algorithms=list(ASSERTION_ALGS)).claims
    except (JoseError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise OAuthError("invalid_client", "client assertion rejected",
                         debug=f"{header.get('alg')}: {exc}") from exc
    cid = claims.get("iss")
    client = core.clients.get(cid if isinstance(cid, str) else None)
    if client is None or client.auth_method != "private_key_jwt" or claims.get("sub") != cid:
        raise OAuthError("invalid_client", "client assertion rejected")
    if req.get("client_id") not in (None, cid):
        raise OAuthError("invalid_client", "client_id does not match the assertion")
    aud = claims.get("aud")
    auds = {a for a in (aud if isinstance(aud, list) else [aud]) if isinstance(a, str)}
    if not ({core.url(endpoint), core.issuer, core.url("/oauth2/token")} & auds):
        raise OAuthError("invalid_client", "client assertion audience is not this server")
    now, exp, jti = core.now(), claims.get("exp"), claims.get("jti")
    if not isinstance(exp, int) or exp <= now - _SKEW or exp > now + 3600:
        raise OAuthError("invalid_client", "client assertion expired or too long-lived")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise OAuthError("invalid_client", "client assertion needs a jti")
    if not core.state.claim_assertion(client.client_id, jti, exp - now + _SKEW):
        raise OAuthError("invalid_client", "client assertion was already used",
                         debug=f"replayed jti for `{cid}`")
    return client
