"""The fast path for ``POST /sts`` with a form body (the AWS SDKs' requests): see
:mod:`idp.web.fastpath`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from idp import logs
from idp.sts import StsError, StsService, build_request
from idp.sts.protocol import error
from idp.web.fastpath import (
    TOO_LARGE,
    StartResponse,
    WsgiApp,
    base_headers,
    form_body,
    is_form_post,
    send,
)

log = logging.getLogger("idp.web.sts")


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
        self.headers = base_headers("text/xml; charset=utf-8", tls=tls)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/sts" or not is_form_post(environ):
            return self.app(environ, start_response)
        rid = logs.request_id(environ)
        body = form_body(environ, self.max_body)
        if not isinstance(body, bytes) or body is TOO_LARGE:
            exc = StsError("Request body too large", code="RequestEntityTooLarge", status=413)
            return self._send(start_response, 413, error(exc, rid), rid)
        try:
            req = build_request("POST", "/sts", environ.get("QUERY_STRING", ""),
                                _headers(environ), body,
                                source_ip=environ.get("REMOTE_ADDR", ""),
                                user_agent=environ.get("HTTP_USER_AGENT", ""),
                                secure=environ.get("wsgi.url_scheme") == "https",
                                request_id=rid)
            result = self.service.handle(req)
            return self._send(start_response, result.status, result.body, rid,
                              result.headers)
        except StsError as exc:
            return self._send(start_response, exc.status, error(exc, rid), rid)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("unexpected error at /sts")
            failure = StsError("An internal error occurred", code="InternalFailure")
            return self._send(start_response, 500, error(failure, rid), rid)

    def _send(self, start_response: StartResponse, status: int, text: str,
              rid: str, extra: dict[str, str] | None = None) -> Iterable[bytes]:
        return send(start_response, status, [*self.headers, ("x-amzn-RequestId", rid),
                                             *(extra or {}).items()], text.encode())
