"""The authorization endpoint (RFC 6749 §4.1.1-4.1.2, OIDC Core §3.1.2, RFC 7636 §4.3,
RFC 9207 ``iss``, OAuth 2.0 Form Post Response Mode).

Errors about the client or the redirect URI are shown to the user and never redirected to
(RFC 6749 §4.1.2.1); every other error goes back to the verified redirect URI.  A request that
needs a login or a consent is parked in the store (``idp:authreq:<id>``) and resumed by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from idp.oidc.claims import ACR, ACR_MFA, Grantee
from idp.oidc.clients import Client
from idp.oidc.core import Core, OAuthRequest, parse_uint
from idp.oidc.errors import OAuthError, invalid_request
from idp.oidc.state import tagged

_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
PROMPTS = ("none", "login", "consent")
AUTHREQ_TTL = 600


@dataclass(frozen=True)
class Redirect:
    """Send the browser to ``url`` (302), or POST ``params`` there (form_post).

    ``via_page``: the browser got here through one of our forms (login, consent), whose CSP
    ``form-action 'self'`` also governs the redirects that follow the POST (CSP3 §6.3.1), so
    the web layer navigates with a page instead of a cross-origin 302."""

    url: str
    params: dict[str, str] = field(default_factory=dict)
    form_post: bool = False
    client_id: str | None = None
    via_page: bool = False


@dataclass(frozen=True)
class ShowError:
    """An error the user sees on our page: the redirect URI cannot be trusted."""

    error: OAuthError


@dataclass(frozen=True)
class NeedLogin:
    resume: str
    reauth: bool


@dataclass(frozen=True)
class NeedConsent:
    resume: str
    client: Client
    scopes: list[str]


@dataclass(frozen=True)
class NeedMfa:
    """A second factor first (step-up), then back to ``/oauth2/authorize?resume=…``."""

    resume: str


Result = Redirect | ShowError | NeedLogin | NeedConsent | NeedMfa


@dataclass(frozen=True)
class AuthzRequest:
    client: Client
    redirect_uri: str
    form_post: bool
    state: str | None
    scopes: list[str]
    nonce: str | None
    challenge: str | None
    prompt: frozenset[str]
    max_age: int | None
    acr_values: tuple[str, ...] = ()


def _respond(core: Core, a: AuthzRequest | tuple[str, bool, str | None],
             params: dict[str, str]) -> Redirect:
    uri, form_post, state = ((a.redirect_uri, a.form_post, a.state)
                             if isinstance(a, AuthzRequest) else a)
    out = {**params, "iss": core.issuer}
    if state is not None:
        out["state"] = state
    if form_post:
        return Redirect(uri, out, True)
    return Redirect(uri + ("&" if "?" in uri else "?") + urlencode(out))


def validate(core: Core, p: dict[str, str], repeated: frozenset[str] = frozenset()
             ) -> AuthzRequest:
    """Check an authorization request; raise OAuthError (``redirect`` tells where it goes)."""
    client = core.clients.get(p.get("client_id"))
    if client is None:
        raise OAuthError("invalid_client", "unknown client_id", status=400, redirect=False)
    uri = p.get("redirect_uri") or ""
    if not uri or not client.redirect_uri_ok(uri):
        raise invalid_request(client.redirect_uri_hint(), redirect=False)
    if "client_id" in repeated or "redirect_uri" in repeated:
        raise invalid_request("repeated parameter", redirect=False)
    mode = p.get("response_mode") or "query"
    form_post = mode == "form_post"
    ctx = (uri, form_post, p.get("state"))
    try:
        if mode not in ("query", "form_post"):
            raise invalid_request(f"response_mode `{mode[:32]}` is not supported")
        if repeated:
            raise invalid_request(f"repeated parameter `{sorted(repeated)[0]}`")
        if p.get("request"):
            raise OAuthError("request_not_supported", "request objects are not supported")
        if p.get("request_uri"):
            raise OAuthError("request_uri_not_supported", "request_uri is not supported")
        if p.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type `code` is supported")
        if not client.allows_grant("authorization_code"):
            raise OAuthError("unauthorized_client", "client may not use the code flow")
        scopes = list(dict.fromkeys((p.get("scope") or "").split()))
        if not scopes or any(s not in client.config.scopes for s in scopes):
            raise OAuthError("invalid_scope", "requested scope is not allowed")
        method = p.get("code_challenge_method")
        challenge = p.get("code_challenge") or None
        if method not in (None, "", "S256"):
            raise invalid_request("code_challenge_method must be `S256`")
        if challenge is None and (client.public or method):
            raise invalid_request("PKCE code_challenge (S256) is required")
        if challenge is not None and (method != "S256" or not _CHALLENGE.match(challenge)):
            raise invalid_request("code_challenge must be an S256 challenge")
        prompt = frozenset((p.get("prompt") or "").split())
        if not prompt <= set(PROMPTS) or ("none" in prompt and len(prompt) > 1):
            raise invalid_request("unsupported prompt value")
        raw_max_age = p.get("max_age") or None
        max_age = parse_uint(raw_max_age) if raw_max_age is not None else None
        if raw_max_age is not None and max_age is None:
            raise invalid_request("max_age must be a non-negative integer of at most 10 digits")
        nonce = p.get("nonce") or None
        if nonce is not None and len(nonce) > 512:
            raise invalid_request("nonce is too long")
        acr_values = tuple((p.get("acr_values") or "").split())
        if len(acr_values) > 16 or any(len(v) > 256 for v in acr_values):
            raise invalid_request("acr_values is too long")
    except OAuthError as exc:
        exc.redirect_to = ctx  # type: ignore[attr-defined]
        raise
    return AuthzRequest(client, uri, form_post, p.get("state"), scopes, nonce,
                        challenge, prompt, max_age, acr_values)


def wants_mfa(core: Core, a: AuthzRequest) -> bool:
    """A second factor is needed: the client requires it (``mfa.require.clients``) or the
    request asks for the MFA ``acr`` (OIDC Core §3.1.2.1 ``acr_values``, in order of
    preference: honoured when the MFA value is the first we support)."""
    if a.client.client_id in core.mfa_clients:
        return True
    supported = [v for v in a.acr_values if v in (ACR, ACR_MFA)]
    return bool(supported) and supported[0] == ACR_MFA


def authorize(core: Core, req: OAuthRequest, grantee: Grantee | None) -> Result:
    """``GET|POST /oauth2/authorize``: validate, then login, consent, or a code."""
    params = dict(req.params)
    auth_after: int | None = None
    resume = req.get("resume")
    if resume:
        rec = core.state.get_authreq(resume)
        if rec is None:
            return ShowError(invalid_request("the sign-in request expired, start again",
                                             redirect=False))
        params, auth_after = rec["params"], rec.get("auth_after")
    try:
        a = validate(core, params, frozenset() if resume else req.repeated)
    except OAuthError as exc:
        return _refuse(core, req, exc, params)
    now = core.now()
    fresh_needed = "login" in a.prompt or (
        grantee is not None and a.max_age is not None and now - grantee.auth_time > a.max_age)
    if grantee is None or (fresh_needed and auth_after is None) or (
            auth_after is not None and grantee.auth_time < auth_after):
        if "none" in a.prompt:
            return _refuse(core, req, OAuthError("login_required", "no fresh session"), params,
                           a)
        if auth_after is None and (fresh_needed or grantee is not None):
            auth_after = now
        ident = _park(core, params, auth_after, None, resume)
        return NeedLogin(ident, reauth=auth_after is not None)
    if wants_mfa(core, a) and "mfa" not in grantee.amr:
        if "none" in a.prompt:
            return _refuse(core, req, OAuthError("interaction_required",
                                                 "a second factor is needed"), params, a)
        return NeedMfa(_park(core, params, auth_after, None, resume))
    if a.client.config.require_consent and (
            "consent" in a.prompt or not set(a.scopes) <= core.state.consented(
                a.client.client_id, grantee.subject)):
        if "none" in a.prompt:
            return _refuse(core, req, OAuthError("consent_required", "consent is needed"),
                           params, a)
        return NeedConsent(_park(core, params, auth_after, grantee.sid, resume), a.client,
                           a.scopes)
    if resume:
        core.state.drop_authreq(resume)
    return issue_code(core, req, a, grantee, via_page=bool(resume))


def _park(core: Core, params: dict[str, str], auth_after: int | None, sid: str | None,
          resume: str | None) -> str:
    ident = resume or core.new_id()
    core.state.put_authreq(ident, {"params": params, "auth_after": auth_after, "sid": sid},
                           AUTHREQ_TTL)
    return ident


def consent(core: Core, req: OAuthRequest, grantee: Grantee | None, allow: bool) -> Result:
    """The user's answer on the consent page (a CSRF-checked POST)."""
    ident = req.get("resume") or ""
    rec = core.state.get_authreq(ident)
    if rec is None or grantee is None or rec.get("sid") != grantee.sid:
        return ShowError(invalid_request("the consent request expired, start again",
                                         redirect=False))
    core.state.drop_authreq(ident)
    try:
        a = validate(core, rec["params"])
    except OAuthError as exc:
        return _refuse(core, req, exc, rec["params"])
    if not allow:
        return _refuse(core, req, OAuthError("access_denied", "the user denied consent"),
                       rec["params"], a, user=grantee.username)
    core.state.remember_consent(a.client.client_id, grantee.subject, set(a.scopes),
                                core.config.consent_ttl)
    core.audit("OidcConsent", req.info, user=grantee.username, client_id=a.client.client_id,
               scope=" ".join(a.scopes))
    return issue_code(core, req, a, grantee, via_page=True)


def issue_code(core: Core, req: OAuthRequest, a: AuthzRequest, grantee: Grantee, *,
               via_page: bool = False) -> Redirect:
    """A one-time, short-lived code (RFC 6749 §4.1.2; ≤ 60 s by default)."""
    code = tagged(core.new_id(), core.new_id())  # <family it will start>.<secret>
    record: dict[str, Any] = {"client_id": a.client.client_id, "redirect_uri": a.redirect_uri,
                              "scope": a.scopes, "nonce": a.nonce,
                              "code_challenge": a.challenge, "grantee": grantee.to_json()}
    core.state.put_code(code, record, core.config.code_ttl)
    core.audit("OidcAuthorize", req.info, user=grantee.username, client_id=a.client.client_id,
               scope=" ".join(a.scopes), pkce=a.challenge is not None)
    r = _respond(core, a, {"code": code})
    return Redirect(r.url, r.params, r.form_post, a.client.client_id, via_page)


def _refuse(core: Core, req: OAuthRequest, exc: OAuthError, params: dict[str, str],
            a: AuthzRequest | None = None, *, user: str | None = None) -> Result:
    core.audit("OidcAuthorizeRefused", req.info, user=user,
               client_id=str(params.get("client_id", ""))[:128], error=exc, reason=exc.debug)
    ctx: Any = a or getattr(exc, "redirect_to", None)
    if not exc.redirect or ctx is None:
        return ShowError(exc)
    return _respond(core, ctx, exc.body())
