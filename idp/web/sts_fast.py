"""A direct WSGI path for ``POST /sts`` with a form body (the AWS SDKs' requests).

The STS Query API uses no cookie, session, template or CSRF token, yet Flask's request context
and response hooks cost about a quarter of an ``AssumeRoleWithSAML``.  Like the blueprint, this
layer only translates (raw request in, :class:`idp.sts.Result` out, the security headers of
:mod:`idp.web.security`); any other method, path or content type goes on to Flask, whose
``/sts`` route gives the same answers.  Same pattern as :mod:`idp.web.oidc_fast`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from idp.sts import StsError, StsService, build_request
from idp.sts.protocol import error
from idp.web.security import CSP

log = logging.getLogger("idp.web.sts")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_STATUS = {200: "200 OK", 400: "400 Bad Request", 403: "403 Forbidden",
           404: "404 Not Found", 413: "413 Content Too Large",
           500: "500 Internal Server Error", 503: "503 Service Unavailable"}
_BASE_HEADERS = [("Content-Type", "text/xml; charset=utf-8"), ("Content-Security-Policy", CSP),
                 ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                 ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin"),
                 ("Cache-Control", "no-store")]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {k[5:].lower().replace("_", "-"): str(v) for k, v in environ.items()
           if k.startswith("HTTP_")}
    for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(k):
            out[k.lower().replace("_", "-")] = str(environ[k])
    return out


class FastSts:
    """WSGI middleware: answer ``POST /sts`` form requests without Flask."""

    def __init__(self, app: WsgiApp, service: StsService, *, max_body: int, tls: bool) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body
        self.headers = list(_BASE_HEADERS)
        if tls:
            self.headers.append(("Strict-Transport-Security",
                                 "max-age=31536000; includeSubDomains"))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        ctype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if environ.get("PATH_INFO") != "/sts" or environ.get("REQUEST_METHOD") != "POST" or \
                ctype != "application/x-www-form-urlencoded":
            return self.app(environ, start_response)
        rid = str(uuid.uuid4())
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > self.max_body:
            exc = StsError("Request body too large", code="RequestEntityTooLarge", status=413)
            return self._send(start_response, 413, error(exc, rid), rid)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            req = build_request("POST", "/sts", environ.get("QUERY_STRING", ""),
                                _headers(environ), body,
                                source_ip=environ.get("REMOTE_ADDR", ""),
                                user_agent=environ.get("HTTP_USER_AGENT", ""),
                                secure=environ.get("wsgi.url_scheme") == "https",
                                request_id=rid)
            result = self.service.handle(req)
            return self._send(start_response, result.status, result.body, rid)
        except StsError as exc:
            return self._send(start_response, exc.status, error(exc, rid), rid)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("unexpected error at /sts")
            failure = StsError("An internal error occurred", code="InternalFailure")
            return self._send(start_response, 500, error(failure, rid), rid)

    def _send(self, start_response: Callable[..., Any], status: int, text: str,
              rid: str) -> Iterable[bytes]:
        body = text.encode()
        start_response(_STATUS.get(status, f"{status} Error"),
                       [*self.headers, ("x-amzn-RequestId", rid),
                        ("Content-Length", str(len(body)))])
        return [body]
