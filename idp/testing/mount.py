"""Several issuers in one kit server: each IdP application mounted under its own path.

An issuer named ``acme`` is ``<server>/acme``: its config's issuer is that URL, so everything
it writes from the issuer (discovery, SAML metadata, endpoints in tokens) carries the prefix.
The application itself serves its fixed paths (``/login``, ``/saml/sso``…): :class:`Mount`
strips the prefix on the way in, and on the way out puts it back where the application wrote a
local path -- ``Location`` headers, ``Set-Cookie`` paths (so each issuer's cookies stay its
own) and the ``action``/``href``/``src`` attributes of its HTML pages.

A SigV4 signature covers the path the client sent, prefix included, which the application
does not see: signed calls (``GetCallerIdentity``, ``/iam``) work on the root issuer only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

WsgiApp = Callable[..., Iterable[bytes]]
_ATTR = re.compile(rb'(\s(?:action|href|src)=")/(?!/)')
_COOKIE_PATH = re.compile(r"(?i)(;\s*path=)(/[^;]*)")


class Mount:
    """Dispatch ``/<name>/…`` to the issuer ``name``, anything else to ``root``."""

    def __init__(self, root: WsgiApp, issuers: Mapping[str, WsgiApp]) -> None:
        self.root = root
        self.issuers = dict(issuers)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        name = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        app = self.issuers.get(name)
        if app is None:
            return self.root(environ, start_response)
        prefix = "/" + name
        environ["PATH_INFO"] = path[len(prefix):] or "/"
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                    ) -> Callable[[bytes], object]:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda _: None

        chunks = app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        headers = [(k, _header(k, v, prefix)) for k, v in captured["headers"]]
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if ctype.startswith("text/html"):
            body = _ATTR.sub(rb"\1" + prefix.encode() + b"/", body)
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v)
                       for k, v in headers]
        start_response(captured["status"], headers, captured["exc_info"])
        return [body]


def _header(name: str, value: str, prefix: str) -> str:
    lower = name.lower()
    if lower == "location" and value.startswith("/") and not value.startswith("//"):
        return prefix + value
    if lower == "set-cookie":
        return _COOKIE_PATH.sub(lambda m: m.group(1) + prefix + m.group(2), value)
    return value
