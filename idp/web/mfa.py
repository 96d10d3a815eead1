"""Second factors in the browser: the second step of sign-in and step-up (``/login/mfa``),
and self-service at ``/account/mfa`` (list, add, rename, remove, recovery codes).

Removing a factor, adding one more and regenerating recovery codes need a second factor used
within ``mfa.step_max_age`` (NIST SP 800-63B §6.1.2.1 asks for authentication at the level
of the authenticator being bound); the person is sent through ``/login/mfa`` first.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import Blueprint, Flask, redirect, render_template, request
from markupsafe import Markup
from werkzeug.wrappers import Response

from idp.errors import UnavailableError
from idp.login.sessions import IdpSession
from idp.mfa.service import MfaError, MfaLocked, MfaService, PendingTotp
from idp.web import security
from idp.web.context import (
    any_session,
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    mfa_redirect,
    request_info,
    safe_next,
    set_current_session,
)

bp = Blueprint("mfa", __name__)
METHOD_TEXT = {"webauthn": "Passkey", "totp": "Authenticator app", "email": "Code by email",
               "sms": "Code by text message", "recovery": "Recovery code"}
KIND_TEXT = {"totp": "Authenticator app", "email": "Email codes", "sms": "Text message codes",
             "webauthn": "Passkey"}


def _svc() -> MfaService:
    svc = components().mfa
    assert svc is not None
    return svc


def _page(template: str, status: int = 200, **ctx: object) -> Response:
    html = render_template(template, csrf_token=form_csrf_token(), **ctx)
    return Response(html, status=status, mimetype="text/html")


def _refused(status: int, message: str) -> Response:
    return Response(render_template("error.html", status=status, title="Request refused",
                                    message=message), status=status, mimetype="text/html")


def fresh(sess: IdpSession) -> bool:
    """A second factor was used in this session within ``mfa.step_max_age``."""
    return sess.mfa_time is not None and sess.pending is None and (
        time.time() - sess.mfa_time <= _svc().config.step_max_age)


@bp.route("/login/mfa", methods=["GET", "POST"])
def second_step() -> Response:
    """The second step after the password, or a step-up of a signed-in session (fields
    ``method``, ``code``, ``csrf_token``; ``?next=``)."""
    sess = any_session()
    next_path = safe_next(request.values.get("next"))
    if sess is None:
        return login_redirect(next_path)
    svc = _svc()
    methods = svc.methods(svc.enrolment(sess.username))
    if not methods:
        return _refused(403, "this needs a second factor and none is set up"
                        + ("" if sess.pending else ": add one at /account/mfa"))
    method = request.values.get("method") or methods[0]
    if method not in methods:
        method = methods[0]

    def form(status: int = 200, error: str | None = None) -> Response:
        options = svc.passkey_options(sess.username) if method == "webauthn" else ""
        return _page("mfa.html", status, methods=[(m, METHOD_TEXT[m]) for m in methods],
                     method=method, next=next_path, error=error, username=sess.username,
                     step_up=sess.pending is None, sent=request.args.get("sent", "")[:128],
                     options=options)

    if request.method == "GET":
        return form()
    if not security.csrf_ok():
        return form(400, "Your session expired. Please try again.")
    try:
        answer = (request.form.get("credential", "") if method == "webauthn"
                  else request.form.get("code", "")[:64])
        verified = svc.verify(sess.username, method, answer, request_info())
    except MfaLocked as exc:
        resp = form(429, "Too many wrong codes. Try again later, or use a recovery code.")
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except MfaError:
        return form(401, "That code is not valid.")
    new = components().sessions.elevate(sess, verified.amr, verified.at)
    set_current_session(new)
    resp = redirect(next_path, code=303)
    security.set_session_cookie(resp, new)  # type: ignore[arg-type]
    return resp  # type: ignore[return-value]


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "never"


@bp.post("/login/mfa/send")
def send_code() -> Response:
    """Send a code by email or text message for the second step (limited: see
    :mod:`idp.mfa.codes`)."""
    sess = any_session()
    next_path = safe_next(request.form.get("next"))
    method = request.form.get("method", "")
    if sess is None:
        return login_redirect(next_path)
    back = {"method": method[:16], "next": next_path}
    if not security.csrf_ok():
        return _refused(400, "missing or invalid CSRF token")
    try:
        where = _svc().send_code(sess.username, method, request_info())
    except MfaLocked as exc:
        resp = _refused(429, exc.description)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except MfaError as exc:
        return _refused(exc.status, exc.description)
    except UnavailableError:
        return _refused(503, "the code could not be sent, try again shortly")
    return redirect("/login/mfa?" + urlencode({**back, "sent": where}),  # type: ignore[return-value]
                    code=303)


def _signed_in() -> IdpSession | Response:
    sess = current_session()
    return sess if sess is not None else login_redirect("/account/mfa")


@bp.get("/account/mfa")
def account_mfa() -> Response:
    """The person's factors and recovery codes."""
    sess = _signed_in()
    if isinstance(sess, Response):
        return sess
    svc = _svc()
    enrolment = svc.enrolment(sess.username)
    factors = [{**f.public(), "kind_text": KIND_TEXT.get(f.kind, f.kind),
                "created_text": _when(f.created),
                "last_used_text": _when(svc.last_used(sess.username, f))}
               for f in enrolment.factors]
    return _page("account_mfa.html", sess=sess, factors=factors,
                 recovery_left=len(enrolment.recovery), enrol=request.args.get("enrol") == "1",
                 notice=request.args.get("done", "")[:32],
                 email_codes="email" in svc.senders and bool(sess.attributes.get("email")),
                 passkeys=svc.passkeys is not None and "webauthn" in svc.config.factors,
                 text_codes="sms" in svc.senders)


def _post_guard(*, need_fresh: bool) -> IdpSession | Response:
    sess = _signed_in()
    if isinstance(sess, Response):
        return sess
    if not security.csrf_ok():
        return _refused(400, "missing or invalid CSRF token")
    if need_fresh and _svc().enrolment(sess.username).has_factor and not fresh(sess):
        return mfa_redirect("/account/mfa")
    return sess


def _totp_page(sess: IdpSession, pending: PendingTotp, status: int = 200,
               error: str | None = None) -> Response:
    return _page("account_mfa_totp.html", status, sess=sess, pending=pending,
                 qr=Markup(pending.qr_svg), error=error)  # noqa: S704 - segno's own SVG


def _enrolled(sess: IdpSession, svc: MfaService, factor_name: str, amr: str) -> Response:
    """After a factor is confirmed: the session counts as MFA from now (a new ID, RFC 8176
    ``amr``), and a person without recovery codes is shown a fresh set, once."""
    new = components().sessions.elevate(sess, amr, int(time.time()))
    if not svc.enrolment(sess.username).recovery:
        resp = _page("mfa_recovery_codes.html", sess=new, factor=factor_name,
                     codes=svc.regenerate_recovery(sess.username, request_info()))
    else:
        resp = redirect("/account/mfa?done=added", code=303)  # type: ignore[assignment]
    security.set_session_cookie(resp, new)
    return resp


@bp.post("/account/mfa/totp")
def add_totp() -> Response:
    """Start enrolling an authenticator app: its secret as text and as a QR code."""
    sess = _post_guard(need_fresh=True)
    if isinstance(sess, Response):
        return sess
    try:
        pending = _svc().begin_totp(sess.username)
    except MfaError as exc:
        return _refused(exc.status, exc.description)
    return _totp_page(sess, pending)


@bp.post("/account/mfa/totp/confirm")
def confirm_totp() -> Response:
    """The first code confirms the secret; a first factor comes with recovery codes."""
    sess = _signed_in()
    if isinstance(sess, Response):
        return sess
    svc = _svc()
    pid = request.form.get("pending", "")[:64]
    pending = svc.pending_totp(sess.username, pid)
    if pending is None:
        return _refused(400, "the enrolment expired, start again")
    if not security.csrf_ok():
        return _totp_page(sess, pending, 400, "Your session expired. Please try again.")
    try:
        factor = svc.confirm_totp(sess.username, pid, request.form.get("code", "")[:64],
                                  request.form.get("name", ""), request_info())
    except MfaError:
        return _totp_page(sess, pending, 401, "That code is not valid. Try the next one.")
    return _enrolled(sess, svc, factor.name, "otp")


@bp.post("/account/mfa/sent")
def add_sent() -> Response:
    """Start enrolling codes by email (the directory's address) or text message (a phone
    number): a code is sent there, and typing it confirms the destination."""
    sess = _post_guard(need_fresh=True)
    if isinstance(sess, Response):
        return sess
    kind = request.form.get("kind", "")
    destination = (sess.attributes.get("email", "") if kind == "email"
                   else request.form.get("phone", "")[:32])
    try:
        pid = _svc().begin_sent(sess.username, kind, destination, request_info())
    except MfaLocked as exc:
        resp = _refused(429, exc.description)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except MfaError as exc:
        return _refused(exc.status, exc.description)
    except UnavailableError:
        return _refused(503, "the code could not be sent, try again shortly")
    return _sent_page(sess, pid)


def _sent_page(sess: IdpSession, pid: str, status: int = 200,
               error: str | None = None) -> Response:
    pending = _svc().pending_sent(sess.username, pid)
    if pending is None:
        return _refused(400, "the enrolment expired, start again")
    kind, where = pending
    return _page("account_mfa_sent.html", status, sess=sess, pending=pid, kind=kind,
                 kind_text=KIND_TEXT[kind], where=where, error=error)


@bp.post("/account/mfa/sent/confirm")
def confirm_sent() -> Response:
    sess = _signed_in()
    if isinstance(sess, Response):
        return sess
    pid = request.form.get("pending", "")[:64]
    if not security.csrf_ok():
        return _sent_page(sess, pid, 400, "Your session expired. Please try again.")
    svc = _svc()
    try:
        factor = svc.confirm_sent(sess.username, pid, request.form.get("code", "")[:16],
                                  request.form.get("name", ""), request_info())
    except MfaError as exc:
        if exc.code == "expired":
            return _refused(400, exc.description)
        return _sent_page(sess, pid, 401, "That code is not valid.")
    return _enrolled(sess, svc, factor.name, "sms" if factor.kind == "sms" else "otp")


@bp.post("/account/mfa/passkey")
def add_passkey() -> Response:
    """Start registering a passkey: the page runs ``navigator.credentials.create``."""
    sess = _post_guard(need_fresh=True)
    if isinstance(sess, Response):
        return sess
    try:
        pid, options = _svc().begin_passkey(sess.username)
    except MfaError as exc:
        return _refused(exc.status, exc.description)
    return _page("account_mfa_passkey.html", sess=sess, pending=pid, options=options)


@bp.post("/account/mfa/passkey/confirm")
def confirm_passkey() -> Response:
    sess = _post_guard(need_fresh=False)
    if isinstance(sess, Response):
        return sess
    svc = _svc()
    try:
        factor = svc.confirm_passkey(sess.username, request.form.get("pending", "")[:64],
                                     request.form.get("credential", ""),
                                     request.form.get("name", ""), request_info())
    except MfaError as exc:
        return _refused(exc.status if exc.status != 401 else 400, exc.description)
    return _enrolled(sess, svc, factor.name, str(factor.data.get("amr", "hwk")))


@bp.post("/account/mfa/rename")
def rename() -> Response:
    sess = _post_guard(need_fresh=False)
    if isinstance(sess, Response):
        return sess
    try:
        _svc().rename(sess.username, request.form.get("factor", "")[:64],
                      request.form.get("name", ""), request_info())
    except MfaError as exc:
        return _refused(exc.status, exc.description)
    return redirect("/account/mfa?done=renamed", code=303)  # type: ignore[return-value]


@bp.post("/account/mfa/remove")
def remove() -> Response:
    """Remove a factor: only with a second factor used just now."""
    sess = _post_guard(need_fresh=True)
    if isinstance(sess, Response):
        return sess
    try:
        _svc().remove(sess.username, request.form.get("factor", "")[:64], request_info())
    except MfaError as exc:
        return _refused(exc.status, exc.description)
    return redirect("/account/mfa?done=removed", code=303)  # type: ignore[return-value]


@bp.post("/account/mfa/recovery")
def regenerate() -> Response:
    """Ten new recovery codes, shown once; the old ones stop working."""
    sess = _post_guard(need_fresh=True)
    if isinstance(sess, Response):
        return sess
    svc = _svc()
    if not svc.enrolment(sess.username).has_factor:
        return _refused(400, "recovery codes come with a second factor: add one first")
    codes = svc.regenerate_recovery(sess.username, request_info())
    return _page("mfa_recovery_codes.html", sess=sess, codes=codes, factor=None)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
