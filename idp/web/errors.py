"""Error pages: every failure is a page with the right status, never a traceback.

HTTP-level refusals (a method a route does not allow, a body over the size limit, a body
werkzeug cannot parse) happen before any blueprint runs; on the machine endpoints they are
answered in the protocol's own shape (OAuth error JSON, AWS error XML, the decision JSON) as
the endpoint answers every other error, and as an HTML page elsewhere.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from idp.errors import IdpError
from idp.iam.query_xml import error as aws_error
from idp.web.context import request_info

log = logging.getLogger("idp.web")

RETRY_AFTER = "5"
"""Seconds a client should wait after a 503 (RFC 9110 §10.2.3), on every path."""


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status


def _idp_error(exc: IdpError) -> tuple[str, int]:
    log.warning("%s: %s (%s)", type(exc).__name__, exc.description, exc.debug)
    title = "Service unavailable" if exc.status == 503 else "Request refused"
    return _page(exc.status, title, exc.description)


_OAUTH_API = frozenset({"/oauth2/token", "/oauth2/userinfo", "/oauth2/introspect",
                        "/oauth2/revoke", "/oauth2/device_authorization"})
_AWS_API = frozenset({"/sts", "/iam"})


def _http_error(exc: HTTPException) -> tuple[str, int] | Response:
    status = exc.code or 500
    message = (exc.description or "").split(".")[0].lower()
    if request.path in _OAUTH_API:  # RFC 6749 §5.2
        body = json.dumps({"error": "invalid_request", "error_description": message})
    elif request.path == "/sts/decide":
        body = json.dumps({"decision": "Deny", "reason": "bad request", "error": {
            "code": exc.name.replace(" ", ""), "message": message}})
    elif request.path.rstrip("/") == "/cloudtrail":  # AWS JSON 1.1 (CloudTrail)
        body = json.dumps({"__type": exc.name.replace(" ", "") + "Exception",
                           "message": message})
        resp = Response(body, status, content_type="application/x-amz-json-1.1")
        resp.headers.update({k: v for k, v in exc.get_headers() if k == "Allow"})
        resp.headers["x-amzn-RequestId"] = request_info().request_id
        return resp
    elif request.path in _AWS_API:  # AWS Query API error document
        resp = Response(aws_error(exc.name.replace(" ", ""), message,
                                  request_info().request_id), status, mimetype="text/xml")
        resp.headers.update({k: v for k, v in exc.get_headers() if k == "Allow"})
        return resp
    else:
        return _page(status, exc.name, message)
    resp = Response(body, status, mimetype="application/json")
    resp.headers.update({k: v for k, v in exc.get_headers() if k == "Allow"})
    resp.headers["Cache-Control"] = "no-store"
    return resp


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
