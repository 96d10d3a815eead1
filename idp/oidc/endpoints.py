"""Discovery (OIDC Discovery §3), UserInfo (OIDC Core §5.3), introspection (RFC 7662),
revocation (RFC 7009) and RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2-3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from idp.oidc.claims import ACR, ACR_MFA, SCOPE_CLAIMS, SCOPES, Grantee
from idp.oidc.client_auth import ASSERTION_ALGS, authenticate
from idp.oidc.clients import DEVICE_GRANT
from idp.oidc.core import Core, JsonResult, OAuthRequest
from idp.oidc.errors import OAuthError
from idp.oidc.grants import NO_STORE
from idp.oidc.jose import ALGS, AT_TYP
from idp.oidc.state import is_opaque

FORM = "application/x-www-form-urlencoded"
_INTROSPECTED = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time",
                 "acr", "amr", "roles", "groups")
SECRET_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def discovery(core: Core) -> dict[str, Any]:
    """Provider metadata: only what is really supported."""
    u = core.url
    claims = ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
              "at_hash", "sid", *dict.fromkeys(c for cs in SCOPE_CLAIMS.values() for c in cs)]
    return {
        "issuer": core.issuer,
        "authorization_endpoint": u("/oauth2/authorize"),
        "token_endpoint": u("/oauth2/token"),
        "userinfo_endpoint": u("/oauth2/userinfo"),
        "jwks_uri": u("/oauth2/jwks"),
        "introspection_endpoint": u("/oauth2/introspect"),
        "revocation_endpoint": u("/oauth2/revoke"),
        "end_session_endpoint": u("/oauth2/logout"),
        "device_authorization_endpoint": u("/oauth2/device_authorization"),
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  DEVICE_GRANT],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": list(ALGS),
        "token_endpoint_auth_methods_supported": [*SECRET_METHODS, "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": SECRET_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": [*SECRET_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "acr_values_supported": [ACR, ACR_MFA],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": False,
        "frontchannel_logout_supported": False,
    }


def form_encoded(content_type: str | None) -> bool:
    """Whether a request body is ``application/x-www-form-urlencoded`` (parameters allowed),
    as the token (RFC 6749 §3.2), introspection (RFC 7662 §2.1), revocation (RFC 7009 §2.1)
    and device authorization (RFC 8628 §3.1) endpoints require."""
    return (content_type or "").split(";", 1)[0].strip().lower() == FORM


def not_form_encoded() -> JsonResult:
    """The answer to a body of any other type (JSON, multipart, none): ``invalid_request``."""
    return JsonResult({"error": "invalid_request",
                       "error_description": f"the request body must be `{FORM}`"},
                      400, dict(NO_STORE))


def body_too_large() -> JsonResult:
    """A body over ``web.max_form_bytes`` (or with a malformed ``Content-Length``)."""
    return JsonResult({"error": "invalid_request", "error_description": "request body too large"},
                      413, dict(NO_STORE))


def malformed_form() -> JsonResult:
    """A form body that is not UTF-8 (or has too many fields)."""
    return JsonResult({"error": "invalid_request", "error_description": "malformed form body"},
                      400, dict(NO_STORE))


def check_access_token(core: Core, token: str) -> dict[str, Any]:
    """A live access token's claims, or ``invalid_token`` (RFC 6750 §3.1).

    A JWT (RFC 9068 §4) is verified, then its ``jti`` and family markers read in one round
    trip; an opaque token is its record, one store read (revoking it deletes the record),
    then its family's marker.  Either is dead with its family."""
    if is_opaque(token):
        found = core.state.get_opaque(token)
        if found is None or not core.now() < found.get("exp", 0):
            raise OAuthError("invalid_token", "unknown, expired or revoked token")
        if core.state.family_revoked(found.get("fid")):
            raise OAuthError("invalid_token", "token was revoked")
        return found
    claims = core.signer.verify(token, typ=AT_TYP, audience=core.audience)
    jti = claims.get("jti")
    if not isinstance(jti, str) or core.state.access_revoked(jti, claims.get("fid")):
        raise OAuthError("invalid_token", "token was revoked")
    return claims


def _bearer(req: OAuthRequest) -> str:
    auth = req.authorization or ""
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    token = req.get("access_token")  # RFC 6750 §2.2 (form body)
    if token:
        return token
    raise OAuthError("invalid_token", "no access token", status=401)


def userinfo(core: Core, req: OAuthRequest) -> JsonResult:
    """Claims about the signed-in user (OIDC Core §5.3); errors per RFC 6750 §3."""
    try:
        claims = check_access_token(core, _bearer(req))
        if "openid" not in str(claims.get("scope", "")).split() or "auth_time" not in claims:
            raise OAuthError("insufficient_scope", "token lacks the `openid` scope")
    except OAuthError as exc:
        core.audit("OidcUserInfoRefused", req.info, error=exc, reason=exc.debug)
        hdr = f'Bearer error="{exc.code}", error_description="{exc.description}"'
        return JsonResult(exc.body(), exc.status, {"WWW-Authenticate": hdr, **NO_STORE})
    keep = {"sub", *(c for s in str(claims["scope"]).split() for c in SCOPE_CLAIMS.get(s, ()))}
    return JsonResult({k: v for k, v in claims.items() if k in keep}, 200, dict(NO_STORE))


def _refresh_info(core: Core, token: str) -> dict[str, Any] | None:
    rec = core.state.get_refresh(token)
    if rec is None or core.state.family_revoked(rec["fid"]):
        return None
    return rec


def introspect(core: Core, req: OAuthRequest) -> JsonResult:
    """RFC 7662 §2: authenticated confidential clients only; inactive is ``{"active": false}``.

    Which tokens a client may introspect (§4 leaves it to the server): access tokens of any
    client (their audience is every resource server of this issuer, RFC 9068 §3, and resource
    servers are the ones that ask); refresh tokens only the client they were issued to; ID
    tokens never (they are not credentials, and are ``typ: JWT``, not ``at+jwt``)."""
    try:
        client = authenticate(core, req, "/oauth2/introspect")
        if client.public:
            raise OAuthError("invalid_client", "public clients cannot introspect")
    except OAuthError as exc:
        core.audit("OidcIntrospectRefused", req.info, error=exc, reason=exc.debug)
        return JsonResult(exc.body(), exc.status, dict(NO_STORE))
    result = _introspection(core, client.client_id, req.get("token") or "")
    body = result.body
    core.audit("OidcIntrospect", req.info, user=body.get("username"), client_id=client.client_id,
               active=body["active"], kind=body.get("token_type"),
               issuedTo=body.get("client_id"), subject=body.get("sub"))
    return result


def _introspection(core: Core, client_id: str, token: str) -> JsonResult:
    """The introspection answer for ``token`` asked by ``client_id`` (RFC 7662 §2.2)."""
    inactive = JsonResult({"active": False}, 200, dict(NO_STORE))
    if not token or len(token) > 16384:
        return inactive
    if token.count(".") != 2 and not is_opaque(token):
        rec = _refresh_info(core, token)
        if rec is None or rec["client_id"] != client_id:
            return inactive  # §4: another client's refresh token says nothing
        return JsonResult({"active": True, "token_type": "refresh_token",
                           "client_id": rec["client_id"], "scope": " ".join(rec["scope"]),
                           "username": rec["grantee"]["username"], "iss": core.issuer,
                           "iat": rec["iat"]}, 200, dict(NO_STORE))
    try:
        claims = check_access_token(core, token)
    except OAuthError:
        return inactive
    body: dict[str, Any] = {"active": True, "token_type": "Bearer",
                            **{k: claims[k] for k in _INTROSPECTED if k in claims}}
    if "preferred_username" in claims:
        body["username"] = claims["preferred_username"]
    return JsonResult(body, 200, dict(NO_STORE))


def revoke(core: Core, req: OAuthRequest) -> JsonResult:
    """RFC 7009 §2: revoke an access token (its ``jti``; an opaque one's record) or a refresh
    token (its family)."""
    try:
        client = authenticate(core, req, "/oauth2/revoke")
    except OAuthError as exc:
        core.audit("OidcRevokeRefused", req.info, error=exc, reason=exc.debug)
        return JsonResult(exc.body(), exc.status, dict(NO_STORE))
    token = req.get("token") or ""
    empty: dict[str, Any] = {}
    done = JsonResult(empty, 200, dict(NO_STORE))
    if not token or len(token) > 16384:
        return done  # §2.2: invalid tokens do not cause an error
    if is_opaque(token):
        found = core.state.get_opaque(token)
        if found is None:
            return done
        if found.get("client_id") != client.client_id:
            return _not_yours(core, req, client.client_id)
        core.state.drop_opaque(token)
        kind = "access_token"
    elif token.count(".") == 2:
        try:
            claims = core.signer.verify(token, typ=AT_TYP, audience=core.audience)
        except OAuthError:
            return done
        if claims.get("client_id") != client.client_id:
            return _not_yours(core, req, client.client_id)
        core.state.revoke_jti(str(claims.get("jti")), int(claims["exp"]) - core.now() + 1)
        kind = "access_token"
    else:
        rec = core.state.get_refresh(token)
        if rec is None:
            return done
        if rec["client_id"] != client.client_id:
            return _not_yours(core, req, client.client_id)
        core.state.revoke_family(rec["fid"], core.config.refresh_family_ttl)
        kind = "refresh_token"
    core.audit("OidcRevoke", req.info, client_id=client.client_id, kind=kind)
    return done


def _not_yours(core: Core, req: OAuthRequest, client_id: str) -> JsonResult:
    exc = OAuthError("unauthorized_client", "the token was issued to another client")
    core.audit("OidcRevokeRefused", req.info, client_id=client_id, error=exc)
    return JsonResult(exc.body(), 400, dict(NO_STORE))


@dataclass(frozen=True)
class LogoutDecision:
    """What ``/oauth2/logout`` does: end the session now or ask first, then go where."""

    end_session: bool
    confirm: bool
    redirect_to: str | None
    client_id: str | None


def _id_token_hint(core: Core, hint: str) -> tuple[dict[str, Any], str]:
    """The claims and client of an ``id_token_hint`` (RP-Initiated Logout 1.0 §2): an ID
    token this OP issued (expired ones too), never an access token or another JWT we signed.
    ID tokens are ``typ: JWT`` (access tokens ``at+jwt``, RFC 9068 §2.1) and have an ID
    token's shape (OIDC Core §2): ``sub``, ``aud`` naming a registered client, ``azp`` that
    client, no ``scope`` or ``client_id``.  Anything else is ``invalid_request`` shown to the
    user, never redirected and never acted on (§4)."""
    try:
        claims = core.signer.verify(hint, typ="jwt", audience=None, check_exp=False)
    except OAuthError as exc:
        raise _not_id_token(exc.debug or exc.description) from exc
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    client_id = auds[0] if auds else None
    if (not isinstance(client_id, str) or core.clients.get(client_id) is None
            or claims.get("azp", client_id) != client_id or not isinstance(claims.get("sub"), str)
            or "scope" in claims or "client_id" in claims):
        raise _not_id_token("not an id token's claims")
    return claims, client_id


def _not_id_token(debug: str) -> OAuthError:
    return OAuthError("invalid_request", "id_token_hint is not an id token of this server",
                      redirect=False, debug=debug)


def logout(core: Core, req: OAuthRequest, grantee: Grantee | None) -> LogoutDecision:
    """RP-initiated logout (§2): the hint names the session; the redirect must be registered."""
    hint, wanted = req.get("id_token_hint"), req.get("post_logout_redirect_uri")
    cid = req.get("client_id")
    claims: dict[str, Any] | None = None
    if hint:
        claims, token_client = _id_token_hint(core, hint)
        if cid and cid != token_client:
            raise OAuthError("invalid_request", "client_id does not match id_token_hint",
                             redirect=False)
        cid = token_client
    client = core.clients.get(cid)
    target = None
    if wanted:
        if client is None or not client.post_logout_uri_ok(wanted):
            raise OAuthError("invalid_request", "post_logout_redirect_uri is not registered",
                             redirect=False)
        state = req.get("state")
        target = wanted
        if state:
            target += ("&" if "?" in wanted else "?") + urlencode({"state": state})
    same = (grantee is not None and claims is not None and bool(grantee.sid)
            and claims.get("sid") == grantee.sid)
    return LogoutDecision(end_session=same, confirm=grantee is not None and not same,
                          redirect_to=target, client_id=client.client_id if client else None)
