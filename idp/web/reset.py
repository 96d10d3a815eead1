"""Forgot password: ``/account/forgot`` (ask for a link) and ``/account/reset`` (use it).
Off (404) unless the config has a ``mail`` section and the directory can take a reset."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from idp.directory.policy import PasswordPolicy
from idp.errors import PasswordRejected
from idp.login.reset import PasswordReset, supported
from idp.web import security
from idp.web.context import components, form_csrf_token, request_info

bp = Blueprint("reset", __name__)

SENT = ("If this address belongs to an account, a link to reset its password is on its way. "
        "It works once, for 15 minutes.")


def _service() -> PasswordReset:
    comps = components()
    service = comps.extras.get("password_reset")
    if isinstance(service, PasswordReset):
        return service
    if comps.config.mail is None or not supported(comps.directory):
        abort(404)
    service = PasswordReset(comps.store, comps.directory, comps.config.mail,
                            PasswordPolicy(comps.config.passwords, comps.config.issuer),
                            comps.auditor, comps.config.issuer)
    comps.extras["password_reset"] = service
    return service


def _page(template: str, status: int = 200, **values: object) -> Response:
    html = render_template(template, csrf_token=form_csrf_token(), **values)
    return Response(html, status=status, mimetype="text/html")


@bp.route("/account/forgot", methods=["GET", "POST"])
def forgot() -> Response:
    """Field ``email``; the same answer for every address."""
    service = _service()
    if request.method == "GET":
        return _page("account_forgot.html")
    if not security.csrf_ok():
        return _page("account_forgot.html", 400, error="Your session expired. Please try again.")
    service.request(request.form.get("email", ""), request_info())
    return _page("account_forgot.html", sent=SENT)


@bp.route("/account/reset", methods=["GET", "POST"])
def reset() -> Response:
    """Fields ``token``, ``new_password``, ``confirm_password``."""
    service = _service()
    token = request.values.get("token", "")
    if service.username_for(token) is None:
        return _page("account_reset.html", 400, token="", reasons=[
            "this link has expired or was already used"])
    if request.method == "GET":
        return _page("account_reset.html", token=token)
    if not security.csrf_ok():
        return _page("account_reset.html", 400, token=token,
                     reasons=["your session expired, please try again"])
    try:
        service.complete(token, request.form.get("new_password", ""),
                         request.form.get("confirm_password", ""), request_info())
    except PasswordRejected as exc:
        return _page("account_reset.html", 400, token=token, reasons=exc.reasons)
    return _page("account_reset.html", token="", done=True)
