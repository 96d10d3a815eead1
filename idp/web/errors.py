"""Error pages: every failure is a page with the right status, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from idp.errors import IdpError

log = logging.getLogger("idp.web")

RETRY_AFTER = "5"
"""Seconds a client should wait after a 503 (RFC 9110 §10.2.3), on every path."""


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status


def _idp_error(exc: IdpError) -> tuple[str, int]:
    log.warning("%s: %s (%s)", type(exc).__name__, exc.description, exc.debug)
    title = "Service unavailable" if exc.status == 503 else "Request refused"
    return _page(exc.status, title, exc.description)


def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    return _page(status, exc.name, (exc.description or "").split(".")[0].lower())


def _unexpected(exc: Exception) -> tuple[str, int]:
    log.exception("unexpected error")
    return _page(500, "Something went wrong", "the request could not be processed")


def _retry_after(resp: Response) -> Response:
    """Every 503 says when to come back (RFC 9110 §15.6.4), whichever handler made it."""
    if resp.status_code == 503 and "Retry-After" not in resp.headers:
        resp.headers["Retry-After"] = RETRY_AFTER
    return resp


def init_app(app: Flask) -> None:
    app.after_request(_retry_after)
    app.register_error_handler(IdpError, _idp_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
