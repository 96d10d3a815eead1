"""Self-service on ``/account``: change my password (with a strength meter and every unmet
rule at once), and the must-change gate that sends a person there before anything else."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as WsgiResponse

from idp.directory.policy import PasswordPolicy
from idp.errors import AuthenticationFailed, PasswordRejected, UnavailableError
from idp.login.password_change import PasswordChangeService
from idp.web import security
from idp.web.context import (
    PASSWORD_PATH,
    any_session,
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    must_change_redirect,
    request_info,
    safe_next,
    session_read_by_view,
)

bp = Blueprint("account", __name__)

_OPEN_DURING_MUST_CHANGE = (PASSWORD_PATH, "/logout", "/static/", "/healthz", "/readyz",
                            "/account/reset", "/account/forgot")
_METER_CSP = (security.CSP + "; connect-src 'self'")


@bp.before_app_request
def recheck_session() -> None:
    """Read the browser's session with its person's revocation markers on every request that
    brings the cookie, so a revoked person's session ends at once (see
    :func:`~idp.web.context.keep_session`)."""
    comps = components()
    if comps.config.session.cookie_name not in request.cookies or \
            request.path.startswith("/static/") or session_read_by_view():
        return
    any_session()


@bp.before_app_request
def must_change_gate() -> WsgiResponse | None:
    """A person whose password must be changed (reset by an administrator, or expired) gets
    only the change form and sign-out until it is changed."""
    if components().config.session.cookie_name not in request.cookies:
        return None
    if request.path.startswith(_OPEN_DURING_MUST_CHANGE) or session_read_by_view():
        return None
    return must_change_redirect(current_session())


def _service() -> PasswordChangeService:
    """The password change service of this app (made once, kept with the components)."""
    comps = components()
    service = comps.extras.get("password_change")
    if not isinstance(service, PasswordChangeService):
        policy = PasswordPolicy(comps.config.passwords, comps.config.issuer)
        service = PasswordChangeService(comps.directory, policy, comps.auditor)
        comps.extras["password_change"] = service
    return service


def _page(status: int = 200, *, reasons: list[str] | None = None, done: bool = False,
          next_path: str = "/account") -> Response:
    sess = current_session()
    assert sess is not None
    html = render_template("account_password.html", sess=sess, reasons=reasons or [],
                           done=done, csrf_token=form_csrf_token(), next=next_path,
                           must_change=bool(sess.extra.get("must_change")),
                           policy=components().config.passwords)
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = _METER_CSP
    return resp


@bp.route(PASSWORD_PATH, methods=["GET", "POST"])
def change_password() -> Response:
    """The change form: ``current_password``, ``new_password``, ``confirm_password``."""
    sess = current_session()
    if sess is None:
        return login_redirect(PASSWORD_PATH)  # type: ignore[return-value]
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        return _page(next_path=next_path)
    if not security.csrf_ok():
        return _page(400, reasons=["your session expired, please try again"],
                     next_path=next_path)
    comps = components()
    service = _service()
    try:
        service.change(sess.identity(), request.form.get("current_password", ""),
                       request.form.get("new_password", ""),
                       request.form.get("confirm_password", ""), request_info())
    except PasswordRejected as exc:
        return _page(400, reasons=exc.reasons, next_path=next_path)
    except AuthenticationFailed:
        return _page(400, reasons=["the current password is not right"], next_path=next_path)
    except UnavailableError:
        return _page(503, reasons=["the directory is unavailable, try again shortly"],
                     next_path=next_path)
    if sess.extra.pop("must_change", None) is not None:
        comps.sessions.save(sess)
    sess.extra.pop("password_warning", None)
    comps.sessions.save(sess)
    return redirect(next_path + ("&" if "?" in next_path else "?") + "password=changed",
                    code=303)  # type: ignore[return-value]


@bp.post(PASSWORD_PATH + "/check")
def check_password() -> Response:
    """The strength meter: zxcvbn's score (0-4) and every unmet rule, as JSON."""
    sess = current_session()
    if sess is None or not security.csrf_ok():
        abort(403)  # the HTML error page, as for every page of a browser
    service = _service()
    new = request.form.get("new_password", "")[:1024]
    return jsonify(score=service.policy.strength(new),
                   unmet=service.unmet(sess.identity(), new))
