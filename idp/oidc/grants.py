"""The token endpoint (RFC 6749 §3.2) and its grant handlers, registered by ``grant_type``
(authorization code §4.1.3 + PKCE RFC 7636 §4.6, refresh §6 with rotation, client credentials
§4.4, device code RFC 8628 §3.4).  Every token for a person is issued for their groups and
attributes as the directory holds them at that moment (:func:`person_now`).  There is no
implicit and no password grant: an unregistered ``grant_type`` is ``unsupported_grant_type``."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from idp.errors import DirectoryUnavailable
from idp.oidc.claims import Grantee
from idp.oidc.client_auth import authenticate
from idp.oidc.clients import DEVICE_GRANT, Client
from idp.oidc.core import Core, JsonResult, OAuthRequest
from idp.oidc.errors import OAuthError, invalid_request
from idp.oidc.state import family_of
from idp.oidc.tokens import Grant, issue
from idp.revocation import revoked_after

Handler = Callable[[Core, Client, OAuthRequest], Grant]
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def s256(verifier: str) -> str:
    """``BASE64URL(SHA256(code_verifier))`` (RFC 7636 §4.2), Authlib's implementation."""
    return str(create_s256_code_challenge(verifier))


def _scopes(raw: str | None, allowed: list[str], default: list[str]) -> list[str]:
    if raw is None:
        return list(default)
    asked = list(dict.fromkeys(raw.split()))
    if not asked or any(s not in allowed for s in asked):
        raise OAuthError("invalid_scope", "requested scope is not allowed")
    return asked


def revoke_family(core: Core, family: str, left: int) -> None:
    """Revoke a token family (RFC 9700 §4.14.2) for as long as any of its tokens can live:
    the ``left`` seconds of the family, plus an access token issued at its very end."""
    core.state.revoke_family(family, max(0, left) + core.config.access_token_ttl)


def person_now(core: Core, grantee: Grantee, family: str | None = None, *,
               revoked: bool | None = None) -> Grantee:
    """The grantee as the directory holds them now, so that every token (a refreshed one too)
    carries the groups and ``roles`` the mapping gives today.  A person no longer in the
    directory gets ``invalid_grant`` (and their refresh family is revoked); an unreachable
    directory gets ``temporarily_unavailable``, and nothing was spent yet (codes and refresh
    tokens are spent only when the new tokens are written, :meth:`OidcState.commit`).
    ``revoked``: whether the person was revoked, when the caller read their markers already."""
    if revoked is None:
        revoked = revoked_after(core.state.store, (grantee.subject, grantee.username),
                                grantee.auth_time)
    if revoked:
        if family:
            revoke_family(core, family, core.config.refresh_family_ttl)
        raise OAuthError("invalid_grant", "the grant was revoked",
                         debug=f"user `{grantee.username[:64]}` revoked by an administrator")
    try:
        current = core.claims.current(grantee)
    except DirectoryUnavailable as exc:
        raise OAuthError("temporarily_unavailable", "the directory cannot be reached, try "
                         "again later", debug=exc.debug) from None
    if current is None:
        if family:
            revoke_family(core, family, core.config.refresh_family_ttl)
        raise OAuthError("invalid_grant", "the person is no longer in the directory",
                         debug=f"user `{grantee.username[:64]}` not found or changed")
    return current


def authorization_code(core: Core, client: Client, req: OAuthRequest) -> Grant:
    """Redeem a code once (RFC 6749 §4.1.3); a second use revokes what the first issued.

    The code is spent only together with writing the refresh token it buys (see
    :meth:`OidcState.commit`): a refused write leaves it redeemable."""
    code = req.get("code")
    if code is None or len(code) > 256:
        raise invalid_request("missing `code`")
    found = core.state.read_code(code)
    family = family_of(code)
    if found is None or family is None:
        used = core.state.code_family(code)
        if used:
            revoke_family(core, *used)
            raise OAuthError("invalid_grant", "authorization code was already used",
                             debug=f"code reuse: family {used[0]} revoked")
        raise OAuthError("invalid_grant", "invalid or expired authorization code")
    rec, spend = found
    if rec["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", "code was issued to another client")
    if req.get("redirect_uri") != rec["redirect_uri"]:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    verifier, challenge = req.get("code_verifier"), rec.get("code_challenge")
    if challenge is None and verifier is not None:
        raise OAuthError("invalid_grant", "code_verifier given but no code_challenge was sent",
                         debug="PKCE downgrade (RFC 9700 §2.1.1)")
    if challenge is not None:
        if verifier is None or not _VERIFIER.match(verifier):
            raise OAuthError("invalid_grant", "missing or malformed code_verifier")
        if not hmac.compare_digest(s256(verifier), challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    now = core.now()
    refresh = client.allows_grant("refresh_token")
    # remember the redemption as long as the family lives, to revoke its tokens on reuse
    lifetime = core.config.refresh_family_ttl if refresh else core.config.access_token_ttl
    spend = spend.marked(core.state.code_used(code, family, lifetime))
    grantee = person_now(core, Grantee.from_json(rec["grantee"]), family)
    return Grant(client, rec["scope"], grantee, rec.get("nonce"), family,
                 now + core.config.refresh_family_ttl, refresh, spend)


def refresh_token(core: Core, client: Client, req: OAuthRequest) -> Grant:
    """Rotate a refresh token (RFC 6749 §6; RFC 9700 §4.14.2): reuse revokes the family.

    The old token is spent only together with writing the new one (see
    :meth:`OidcState.commit`): a refused write leaves the old token valid."""
    token = req.get("refresh_token")
    if token is None or len(token) > 256:
        raise invalid_request("missing `refresh_token`")
    found = core.state.read_refresh(token)
    if found is None:
        used = core.state.used_refresh_family(token)
        if used:
            revoke_family(core, *used)
            raise OAuthError("invalid_grant", "refresh token was already used",
                             debug=f"refresh reuse: family {used[0]} revoked")
        raise OAuthError("invalid_grant", "invalid or expired refresh token")
    rec, spend = found
    now = core.now()
    if rec["client_id"] != client.client_id:
        # bound to its client (RFC 6749 §10.4): for any other client it is an unknown token,
        # not spent, and the owner's family stays (only rotated-out tokens reveal a leak)
        raise OAuthError("invalid_grant", "invalid or expired refresh token",
                         debug=f"refresh token of `{rec['client_id']}`")
    grantee = Grantee.from_json(rec["grantee"])
    marks = core.state.refresh_marks(rec["fid"], client.client_id, grantee.subject,
                                     grantee.username)
    if marks.family:
        raise OAuthError("invalid_grant", "refresh token was revoked")
    scopes = _scopes(req.get("scope"), rec["scope"], rec["scope"])
    started = rec["fexp"] - core.config.refresh_family_ttl
    if marks.grants_revoked(started):
        revoke_family(core, rec["fid"], rec["fexp"] - now)
        raise OAuthError("invalid_grant", "refresh token was revoked",
                         debug="the person revoked the client's access on /account")
    # the roles of the mapping at refresh time, not at sign-in (nothing is spent before this)
    grantee = person_now(core, grantee, rec["fid"],
                         revoked=marks.person_revoked(grantee.auth_time))
    spend = spend.marked(core.state.refresh_used(token, rec["fid"], rec["fexp"] - now))
    return Grant(client, scopes, grantee, None, rec["fid"], rec["fexp"], True, spend)


def client_credentials(core: Core, client: Client, req: OAuthRequest) -> Grant:
    """Client credentials (RFC 6749 §4.4): confidential clients only, no refresh token."""
    if client.public:
        raise OAuthError("unauthorized_client", "public clients cannot use client_credentials")
    allowed = [s for s in client.config.scopes if s not in ("openid", "offline_access")]
    return Grant(client, _scopes(req.get("scope"), allowed, allowed))


def device_code(core: Core, client: Client, req: OAuthRequest) -> Grant:
    """Poll for a device authorization (RFC 8628 §3.4, §3.5)."""
    code = req.get("device_code")
    if code is None or len(code) > 256:
        raise invalid_request("missing `device_code`")
    rec = core.state.get_device(code)
    if rec is None:
        raise OAuthError("invalid_grant", "invalid device_code")
    if rec["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", "device_code was issued to another client")
    if core.now() >= rec["expires_at"]:
        raise OAuthError("expired_token", "device_code expired")
    if rec["status"] == "pending":
        if core.state.poll_too_fast(code, core.config.device_poll_interval):
            raise OAuthError("slow_down", "polling too fast")
        raise OAuthError("authorization_pending", "the user has not answered yet")
    family = family_of(code)
    found = core.state.read_device(code)
    if found is None or family is None:
        raise OAuthError("invalid_grant", "device_code was already used")
    rec, spend = found
    if rec["status"] != "approved":
        core.state.drop_device(code)
        raise OAuthError("access_denied", "the user denied the request")
    now = core.now()
    return Grant(client, rec["scope"], person_now(core, Grantee.from_json(rec["grantee"])),
                 None, family, now + core.config.refresh_family_ttl,
                 client.allows_grant("refresh_token"), spend)


GRANTS: dict[str, Handler] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
    DEVICE_GRANT: device_code,
}


def token_endpoint(core: Core, req: OAuthRequest) -> JsonResult:
    """``POST /oauth2/token``: authenticate, dispatch on ``grant_type``, audit either way."""
    grant_type = req.get("grant_type") or ""
    client: Client | None = None
    try:
        if req.repeated:
            raise invalid_request(f"repeated parameter `{sorted(req.repeated)[0]}`")
        client = authenticate(core, req, "/oauth2/token")
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", f"grant_type `{grant_type[:64]}` is not "
                             "supported")
        if not client.allows_grant(grant_type):
            raise OAuthError("unauthorized_client", f"client may not use `{grant_type}`")
        grant = handler(core, client, req)
        body = issue(core, grant)
    except OAuthError as exc:
        core.audit("OidcTokenRefused", req.info, client_id=client.client_id if client else
                   (req.get("client_id") or "")[:128], error=exc, grantType=grant_type[:64],
                   reason=exc.debug)
        headers = dict(NO_STORE)
        if exc.code == "invalid_client" and (req.authorization or "").lower().startswith("basic"):
            headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
        if exc.status == 503:  # the directory did not answer: worth a retry (RFC 9110 §10.2.3)
            headers["Retry-After"] = "5"
        return JsonResult(exc.body(), exc.status, headers)
    user = grant.grantee.username if grant.grantee else None
    core.audit("OidcRefresh" if grant_type == "refresh_token" else "OidcToken", req.info,
               user=user, client_id=client.client_id, grantType=grant_type,
               scope=body["scope"], family=grant.family,
               refreshIssued="refresh_token" in body,
               accessFormat=client.config.access_token_format)
    return JsonResult(body, 200, dict(NO_STORE))
