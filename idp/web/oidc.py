"""OpenID Connect / OAuth 2.0 endpoints: Flask translation of :mod:`idp.oidc` only.

Paths are DESIGN.md's: discovery, ``/oauth2/*`` and ``/device``.  Protocol errors are answered
here (OAuth JSON, a redirect, or our error page when the redirect URI cannot be trusted)
before the app's generic HTML error handler sees them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, redirect, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from idp.errors import UnavailableError
from idp.oidc import Grantee, JsonResult, OAuthError, OAuthRequest, build_provider, session_sid
from idp.oidc.authorize import NeedConsent, NeedLogin, NeedMfa, Redirect, Result, ShowError
from idp.oidc.endpoints import body_too_large, form_encoded, malformed_form, not_form_encoded
from idp.oidc.provider import OidcProvider
from idp.web import fastpath, security
from idp.web.context import (
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    mfa_redirect,
    request_info,
)
from idp.web.oidc_fast import FastOAuth

bp = Blueprint("oidc", __name__)
SCOPE_TEXT = {
    "openid": "sign you in", "profile": "your name and username", "email": "your email address",
    "groups": "your groups", "roles": "the AWS roles you may take, with session tags",
    "offline_access": "stay connected when you are away (refresh tokens)",
    "sso:account:access": "the AWS accounts and roles assigned to you (AWS access portal)",
}
_API = ("/oauth2/token", "/oauth2/userinfo", "/oauth2/introspect", "/oauth2/revoke",
        "/oauth2/device_authorization")


def provider() -> OidcProvider:
    p: OidcProvider = components().extras["oidc"]
    return p


def _oauth_request(source: Any) -> OAuthRequest:
    params = {k: source.get(k, "") for k in source}
    repeated = frozenset(k for k in source if len(source.getlist(k)) > 1)
    return OAuthRequest(params, request.headers.get("Authorization"), request_info(), repeated)


def _form_request() -> OAuthRequest:
    return _oauth_request(request.form)


def _json(result: JsonResult) -> Response:
    resp = Response(json.dumps(result.body, separators=(",", ":")), status=result.status,
                    mimetype="application/json")
    resp.headers.update(result.headers)
    return resp


def _grantee() -> Grantee | None:
    sess = current_session()
    if sess is None:
        return None
    return Grantee(sess.username, sess.subject, list(sess.groups), dict(sess.attributes),
                   sess.auth_time, list(sess.amr), session_sid(components().secret, sess.id))


def _error_page(status: int, message: str) -> Response:
    return Response(render_template("error.html", status=status, title="Request refused",
                                    message=message), status=status, mimetype="text/html")


def _scopes(scopes: list[str]) -> list[tuple[str, str]]:
    return [(s, SCOPE_TEXT.get(s, s)) for s in scopes]


def _result(result: Result) -> Response:
    if isinstance(result, ShowError):
        return _error_page(result.error.status if result.error.status < 500 else 400,
                           result.error.description)
    if isinstance(result, NeedLogin):
        return login_redirect(f"/oauth2/authorize?resume={result.resume}", reauth=result.reauth)
    if isinstance(result, NeedMfa):
        return mfa_redirect(f"/oauth2/authorize?resume={result.resume}")
    if isinstance(result, NeedConsent):
        sess = current_session()
        html = render_template("oidc_consent.html", client_name=result.client.name,
                               scopes=_scopes(result.scopes), resume=result.resume,
                               username=sess.username if sess else "",
                               csrf_token=form_csrf_token())
        return Response(html, mimetype="text/html")
    return _redirect(result)


def waiting_client_name(resume: str) -> str | None:
    """Who the parked request ``/oauth2/authorize?resume=<resume>`` signs in to, for the
    login page: the registered client's name (its ``client_name``, else its ID)."""
    rec = provider().core.state.get_authreq(resume)
    params = rec.get("params") if rec is not None else None
    client_id = params.get("client_id") if isinstance(params, dict) else None
    client = provider().core.clients.get(client_id) if isinstance(client_id, str) else None
    return client.name if client is not None else None


def _participant(client_id: str | None) -> None:
    """Remember that this client got something from the IdP session (for logout)."""
    sess = current_session()
    if client_id and sess is not None and client_id not in sess.participants:
        sess.participants.append(client_id)
        components().sessions.save(sess)


def _redirect(result: Redirect) -> Response:
    _participant(result.client_id)
    if not result.form_post and result.via_page:
        resp = Response(render_template("oidc_continue.html", url=result.url),
                        mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        return resp
    if not result.form_post:
        resp = redirect(result.url, code=302)  # type: ignore[assignment]
        resp.headers["Cache-Control"] = "no-store"
        return resp
    target = urlsplit(result.url)
    html = render_template("oidc_form_post.html", action=result.url, params=result.params)
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; "
        f"form-action {target.scheme}://{target.netloc}; frame-ancestors 'none'; "
        "base-uri 'none'")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    resp = _json(JsonResult(provider().discovery()))
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.get("/oauth2/jwks")
def jwks() -> Response:
    resp = _json(JsonResult(provider().jwks(components().keys)))
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.route("/oauth2/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """Authorization request (GET or form POST, OIDC Core §3.1.2.1) or a consent answer."""
    if request.method == "POST" and "decision" in request.form:
        if not security.csrf_ok():
            return _error_page(400, "missing or invalid CSRF token")
        allow = request.form.get("decision") == "allow"
        return _result(provider().consent(_form_request(), _grantee(), allow))
    source = request.form if request.method == "POST" else request.args
    return _result(provider().authorize(_oauth_request(source), _grantee()))


def _form_only(endpoint: Callable[[OAuthRequest], JsonResult]) -> Response:
    """A form-encoded POST endpoint: any other body is ``invalid_request`` (see
    :func:`idp.oidc.endpoints.form_encoded`)."""
    if not form_encoded(request.content_type):
        return _json(not_form_encoded())
    try:  # as the fast path answers (idp.web.oidc_fast: UTF-8, at most 100 fields)
        raw = request.get_data(cache=True)
        raw.decode("utf-8")
        if raw.count(b"&") >= 100:
            return _json(malformed_form())
    except RequestEntityTooLarge:
        return _json(body_too_large())
    except UnicodeDecodeError:
        return _json(malformed_form())
    return _json(endpoint(_form_request()))


@bp.post("/oauth2/token")
def token() -> Response:
    return _form_only(provider().token)


@bp.route("/oauth2/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """UserInfo (OIDC Core §5.3): the token in the header, or in a form body (RFC 6750 §2.2),
    never in the query string."""
    req = (_form_request() if request.method == "POST" else
           OAuthRequest({}, request.headers.get("Authorization"), request_info()))
    return _json(provider().userinfo(req))


@bp.post("/oauth2/introspect")
def introspect() -> Response:
    return _form_only(provider().introspect)


@bp.post("/oauth2/revoke")
def revoke() -> Response:
    return _form_only(provider().revoke)


@bp.post("/oauth2/device_authorization")
def device_authorization() -> Response:
    return _form_only(provider().device_authorization)


@bp.route("/device", methods=["GET", "POST"])
def device() -> Response:
    """The user's side of the device flow (RFC 8628 §3.3)."""
    grantee = _grantee()
    code = (request.values.get("user_code") or "")[:16]
    if grantee is None:
        return login_redirect("/device" + (f"?{urlencode({'user_code': code})}" if code else ""))
    page: dict[str, Any] = {"step": "enter", "user_code": code, "error": None,
                            "username": grantee.username}
    status = 400
    if request.method == "POST":
        if not security.csrf_ok():
            page["error"] = "Your session expired. Please try again."
        else:
            decision = request.form.get("decision")
            try:
                if decision in ("approve", "deny"):
                    found = provider().answer_device(_form_request(), code, grantee,
                                                     decision == "approve")
                    _participant(found.client.client_id)
                    page.update(step="done", approved=decision == "approve",
                                client_name=found.client.name)
                else:
                    found = provider().find_device(_form_request(), code, grantee)
                    page.update(step="confirm", client_name=found.client.name,
                                user_code=f"{found.user_code[:4]}-{found.user_code[4:]}",
                                scopes=_scopes(found.scopes))
            except OAuthError as exc:
                page["error"] = exc.description.capitalize() + "."
                status = 429 if exc.status == 429 else 400
    html = render_template("oidc_device.html", csrf_token=form_csrf_token(), **page)
    return Response(html, status=status if page["error"] else 200, mimetype="text/html")


@bp.route("/oauth2/logout", methods=["GET", "POST"])
def logout() -> Response:
    """RP-initiated logout: end the IdP session the ID token belongs to (or, without a
    matching hint, after the user confirms with a CSRF-checked POST)."""
    post = request.method == "POST"
    if post and not security.csrf_ok():
        return _error_page(400, "missing or invalid CSRF token")
    req = _oauth_request(request.form if post else request.args)
    try:
        decision = provider().logout(req, _grantee())
    except OAuthError as exc:
        return _error_page(400, exc.description)
    sess = current_session()
    if sess is not None and (decision.end_session or post):
        components().login.logout(sess, request_info())
        provider().core.audit("OidcLogout", request_info(), user=sess.username,
                              client_id=decision.client_id)
    elif sess is not None:
        client = provider().core.clients.get(decision.client_id)
        params = [(k, v) for k, v in req.params.items() if k != "csrf_token"]
        html = render_template("oidc_logout.html", done=False, params=params,
                               client_name=client.name if client else None,
                               csrf_token=form_csrf_token())
        return Response(html, mimetype="text/html")
    if decision.redirect_to and post:  # after our form: CSP form-action 'self' (see Redirect)
        resp = Response(render_template("oidc_continue.html", url=decision.redirect_to),
                        mimetype="text/html")
    elif decision.redirect_to:
        resp = redirect(decision.redirect_to, code=302)  # type: ignore[assignment]
    else:
        resp = Response(render_template("oidc_logout.html", done=True), mimetype="text/html")
    security.clear_session_cookie(resp)
    return resp


@bp.errorhandler(UnavailableError)
def _unavailable(exc: UnavailableError) -> Response:
    """A store outage: OAuth JSON on the API endpoints, the error page elsewhere."""
    if request.path in _API:
        return _json(JsonResult({"error": "temporarily_unavailable",
                                 "error_description": exc.description}, 503,
                                {"Retry-After": "5"}))
    resp = Response(render_template("error.html", status=503, title="Service unavailable",
                                    message=exc.description), status=503, mimetype="text/html")
    return resp


def init_app(app: Flask, comps: Any) -> None:
    """Build the provider once (``comps.extras["oidc"]``) and register the blueprint."""
    provider = build_provider(comps.config, keys=comps.keys, store=comps.store,
                              auditor=comps.auditor, roles=comps.iam, demo=comps.demo,
                              people=comps.directory)
    comps.extras["oidc"] = provider
    app.register_blueprint(bp)
    # the M2M endpoints skip Flask's per-request machinery (see idp.web.oidc_fast); inside
    # ProxyFix when there is one, so client addresses are the same as Flask's
    fastpath.install(app, functools.partial(
        FastOAuth, provider=provider, max_body=comps.config.web.max_form_bytes,
        tls=comps.config.tls))
