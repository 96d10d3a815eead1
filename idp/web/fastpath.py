"""Direct WSGI paths for machine-to-machine form POSTs (the AWS SDKs at ``/sts``, OAuth
clients at ``/oauth2/token|introspect|revoke``).

Those requests use no cookie, session, template or CSRF token, yet Flask's request context and
response hooks cost about a quarter of the work.  A fast path only translates, like a
blueprint: raw form body in, the core's result out, with the same security headers as
:mod:`idp.web.security`.  Anything else (another method, path or content type) goes on to
Flask, whose routes for the same paths give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.web.errors import RETRY_AFTER
from idp.web.security import SECURITY_HEADERS, hsts

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
StartResponse = Callable[..., Any]

TOO_LARGE = object()
"""What :func:`form_body` returns for a body over the limit."""


def install(app: Flask, make: Callable[[WsgiApp], WsgiApp]) -> None:
    """Put a fast path in front of Flask, inside ProxyFix when there is one (so client
    addresses are the ones Flask sees)."""
    outer: Any = app.wsgi_app
    if isinstance(outer, ProxyFix):
        outer.app = make(outer.app)
    else:
        app.wsgi_app = make(outer)  # type: ignore[method-assign,assignment]


def base_headers(content_type: str, *, tls: bool) -> list[tuple[str, str]]:
    """The security headers of every page, for a machine response of ``content_type``."""
    headers = [("Content-Type", content_type), *SECURITY_HEADERS.items(),
               ("Cache-Control", "no-store")]
    if tls:
        headers.append(("Strict-Transport-Security", hsts()))
    return headers


def is_form_post(environ: dict[str, Any]) -> bool:
    ctype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    return environ.get("REQUEST_METHOD") == "POST" and ctype == "application/x-www-form-urlencoded"


def form_body(environ: dict[str, Any], max_body: int) -> bytes | object:
    """The request body, or :data:`TOO_LARGE` (also for a malformed ``Content-Length``)."""
    raw = environ.get("CONTENT_LENGTH") or "0"
    # 1*DIGIT (RFC 9110 §8.6): ``int`` would also take signs, spaces, ``_`` and other digits
    if len(raw) > 12 or not raw.isascii() or not raw.isdigit():
        return TOO_LARGE
    length = int(raw)
    if length > max_body:
        return TOO_LARGE
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    return body


def send(start_response: StartResponse, status: int, headers: list[tuple[str, str]],
         body: bytes) -> Iterable[bytes]:
    reason = HTTP_STATUS_CODES.get(status, "Error")
    if status == 503 and not any(k.lower() == "retry-after" for k, _ in headers):
        headers = [*headers, ("Retry-After", RETRY_AFTER)]  # as idp.web.errors does for Flask
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]
