"""A direct WSGI path for the machine-to-machine OAuth endpoints (``POST /oauth2/token``,
``/oauth2/introspect``, ``/oauth2/revoke`` with a form body).

These endpoints use no cookie, session, template or CSRF token, yet Flask's request context,
cookie session and response hooks cost more than the protocol work itself (about 0.3 ms a
request on the bench machine).  This layer only translates, like the blueprint: form body and
``Authorization`` header in, :class:`~idp.oidc.JsonResult` out, with the same security
headers as :mod:`idp.web.security`.  A POST of another content type gets the routes' own
``invalid_request``; anything else (another method or path) goes on to Flask, whose routes
for the same paths give the same answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from idp import logs
from idp.audit import RequestInfo
from idp.errors import UnavailableError
from idp.oidc import JsonResult, OAuthRequest
from idp.oidc.endpoints import body_too_large, form_encoded, malformed_form, not_form_encoded
from idp.oidc.provider import OidcProvider
from idp.web.fastpath import (
    TOO_LARGE,
    StartResponse,
    WsgiApp,
    base_headers,
    form_body,
    send,
)

log = logging.getLogger("idp.web.oidc")


class FastOAuth:
    """WSGI middleware: answer the form POSTs of the M2M endpoints without Flask."""

    def __init__(self, app: WsgiApp, provider: OidcProvider, *, max_body: int,
                 tls: bool) -> None:
        self.app = app
        self.routes: dict[str, Callable[[OAuthRequest], JsonResult]] = {
            "/oauth2/token": provider.token, "/oauth2/introspect": provider.introspect,
            "/oauth2/revoke": provider.revoke}
        self.max_body = max_body
        self.headers = base_headers("application/json", tls=tls)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        handler = self.routes.get(environ.get("PATH_INFO", ""))
        if handler is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        if not form_encoded(environ.get("CONTENT_TYPE")):  # as the Flask routes answer
            return self._send(start_response, not_form_encoded())
        raw = form_body(environ, self.max_body)
        if not isinstance(raw, bytes) or raw is TOO_LARGE:
            return self._send(start_response, body_too_large())
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=100)
        except (UnicodeDecodeError, ValueError):
            return self._send(start_response, malformed_form())
        params: dict[str, str] = {}
        repeated = set()
        for k, v in pairs:
            if k in params:
                repeated.add(k)
            params[k] = v
        info = RequestInfo(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_USER_AGENT", ""),
                           logs.request_id(environ))
        req = OAuthRequest(params, environ.get("HTTP_AUTHORIZATION"), info, frozenset(repeated))
        try:
            result = handler(req)
        except UnavailableError as exc:
            result = JsonResult({"error": "temporarily_unavailable",
                                 "error_description": exc.description}, 503,
                                {"Retry-After": "5"})
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("unexpected error at %s", environ.get("PATH_INFO"))
            result = JsonResult({"error": "server_error",
                                 "error_description": "the request could not be processed"},
                                500)
        return self._send(start_response, result)

    def _send(self, start_response: StartResponse, result: JsonResult) -> Iterable[bytes]:
        body = json.dumps(result.body, separators=(",", ":")).encode()
        own = {k.lower() for k in result.headers}
        headers = [(k, v) for k, v in self.headers if k.lower() not in own]
        return send(start_response, result.status, [*headers, *result.headers.items()], body)
