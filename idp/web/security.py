"""Security headers, the CSRF cookie and session cookies for every response.

Headers follow the OWASP Secure Headers Project: a strict Content-Security-Policy with
``frame-ancestors 'none'`` (clickjacking), ``nosniff``, ``no-referrer``, HSTS under TLS.  A
blueprint that must post a form to another origin (SAML HTTP-POST binding) sets its own
``Content-Security-Policy`` header; this module then leaves it alone.
"""

from __future__ import annotations

from flask import Flask, g, request
from werkzeug.wrappers import Response

from idp.login.csrf import CSRF_COOKIE, check_csrf, new_binding
from idp.login.sessions import IdpSession
from idp.web.context import components

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
DEVICE_COOKIE = "idp_device"
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def hsts() -> str:
    return "max-age=31536000; includeSubDomains"


def _secure() -> bool:
    mode = components().config.session.secure_cookie
    return mode == "always" or (mode == "auto" and components().config.tls)


def _ensure_csrf_binding() -> None:
    if not request.cookies.get(CSRF_COOKIE):
        g.idp_csrf_binding = new_binding()


def _headers(resp: Response) -> Response:
    h = resp.headers
    for name, value in SECURITY_HEADERS.items():
        h.setdefault(name, value)
    if resp.mimetype == "text/html":
        h.setdefault("Cache-Control", "no-store")
    if components().config.tls:
        h.setdefault("Strict-Transport-Security", hsts())
    binding = g.get("idp_csrf_binding")
    if binding:
        resp.set_cookie(CSRF_COOKIE, binding, httponly=True, samesite="Lax", secure=_secure(),
                        path="/")
    return resp


def csrf_ok() -> bool:
    """Whether the posted ``csrf_token`` matches this browser's CSRF cookie."""
    return check_csrf(components().secret, request.cookies.get(CSRF_COOKIE),
                      request.form.get("csrf_token"))


def set_session_cookie(resp: Response, sess: IdpSession) -> None:
    cfg = components().config.session
    resp.set_cookie(cfg.cookie_name, sess.id, max_age=cfg.absolute_timeout, httponly=True,
                    samesite="Lax", secure=_secure(), path="/")


def clear_session_cookie(resp: Response) -> None:
    resp.delete_cookie(components().config.session.cookie_name, path="/", httponly=True,
                       samesite="Lax", secure=_secure())


def set_device_cookie(resp: Response, token: str) -> None:
    days = components().config.login.device_cookie_days
    resp.set_cookie(DEVICE_COOKIE, token, max_age=days * 86400, httponly=True, samesite="Lax",
                    secure=_secure(), path="/login")


def init_app(app: Flask) -> None:
    app.before_request(_ensure_csrf_binding)
    app.after_request(_headers)
