"""Browser login: ``/login``, ``/logout``, ``/account``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.errors import AuthenticationFailed, TooManyAttempts, UnavailableError
from idp.login.service import LoginAttempt
from idp.mfa.service import MfaError
from idp.web import security
from idp.web.context import (
    any_session,
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    request_info,
    safe_next,
)

bp = Blueprint("login", __name__)


def _asked_by(next_path: str) -> str | None:
    """The registered SP or OIDC client whose parked request the login continues (``next``
    is ``/saml/sso?resume=…`` or ``/oauth2/authorize?resume=…``), or ``None``.  The name
    comes from the SP's metadata or the client's registration only; the request merely
    selects one of those (a made-up or expired ``resume`` names nobody)."""
    parts = urlsplit(next_path)
    resume = parse_qs(parts.query).get("resume", [""])[0]
    if not resume:
        return None
    from idp.web.oidc import waiting_client_name
    from idp.web.saml import waiting_sp_name

    lookup = {"/saml/sso": waiting_sp_name,
              "/oauth2/authorize": waiting_client_name}.get(parts.path)
    if lookup is None:
        return None
    try:
        return lookup(resume)
    except UnavailableError:  # the page still works without the name
        return None


def _form(status: int = 200, *, error: str | None = None, username: str = "",
          notice: str | None = None) -> Response:
    next_path = safe_next(request.values.get("next"))
    html = render_template("login.html", error=error, username=username[:256],
                           next=next_path, reauth=request.values.get("reauth") == "1",
                           csrf_token=form_csrf_token(), notice=notice,
                           asked_by=_asked_by(next_path))
    resp = Response(html, status=status, mimetype="text/html")
    return resp


def _wait(seconds: int) -> str:
    """How long a lockout lasts, in words a person reads ("1 minute", "15 minutes")."""
    minutes = max(1, -(-int(seconds) // 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


@bp.get("/")
def index() -> Response:
    return redirect("/account" if current_session() else "/login")  # type: ignore[return-value]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """The login form (fields ``username``, ``password``, ``csrf_token``; ``?next=``)."""
    if request.method == "GET":
        if current_session() and request.args.get("reauth") != "1":
            return redirect(safe_next(request.args.get("next")))  # type: ignore[return-value]
        signed_out = request.args.get("signed_out") == "1"
        return _form(notice="You are signed out." if signed_out else None)
    username = request.form.get("username", "")
    if not security.csrf_ok():
        return _form(400, error="Your session expired. Please try again.", username=username)
    sess = current_session()
    attempt = LoginAttempt(
        username=username, password=request.form.get("password", ""), request=request_info(),
        device_token=request.cookies.get(security.DEVICE_COOKIE),
        previous_session_id=sess.id if sess else None,
    )
    try:
        outcome = components().login.login(attempt)
    except AuthenticationFailed:
        return _form(401, error="Invalid username or password.", username=username)
    except TooManyAttempts as exc:
        resp = _form(429, error="Too many failed attempts. Try again in "
                     f"{_wait(exc.retry_after)}.", username=username)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except UnavailableError:
        return _form(503, error="The service is temporarily unavailable. Try again shortly.",
                     username=username)
    except MfaError as exc:
        return _form(exc.status, error=exc.description.capitalize() + ".", username=username)
    target = safe_next(request.form.get("next"))
    if outcome.second_step == "mfa":
        target = "/login/mfa?" + urlencode({"next": target})
    elif outcome.second_step == "enrol":
        target = "/account/mfa?" + urlencode({"enrol": "1"})
    resp = redirect(target, code=303)
    security.set_session_cookie(resp, outcome.session)
    security.set_device_cookie(resp, outcome.device_token)
    return resp  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    """End the IdP session (CSRF-protected POST)."""
    if not security.csrf_ok():
        return Response(render_template("error.html", status=400, title="Request refused",
                                        message="missing or invalid CSRF token"), status=400,
                        mimetype="text/html")
    sess = any_session()
    if sess is not None:
        components().login.logout(sess, request_info())
    resp = redirect("/login?signed_out=1", code=303)
    security.clear_session_cookie(resp)
    return resp  # type: ignore[return-value]


@bp.get("/account")
def account() -> Response:
    """Who am I: the signed-in person, their groups and the roles they may take."""
    sess = current_session()
    if sess is None:
        return login_redirect("/account")
    roles_for = components().extras.get("roles_for")
    roles = roles_for(sess) if callable(roles_for) else []
    from idp.web.account_console import console

    html = render_template("account.html", sess=sess, roles=roles,
                           csrf_token=form_csrf_token(), mfa_enabled=components().mfa is not None,
                           **console(sess))
    return Response(html, mimetype="text/html")
