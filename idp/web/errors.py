"""Error pages: every failure is a page with the right status, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from idp.errors import IdpError

log = logging.getLogger("idp.web")


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


def init_app(app: Flask) -> None:
    app.register_error_handler(IdpError, _idp_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
