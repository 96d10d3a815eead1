"""Request recording: every request the kit IdP received, parsed, for tests to assert on
(mock-oauth2-server's ``takeRequest``).

:class:`Recorder` is WSGI middleware around the whole application, fast paths included: it
reads the body once (up to the app's own form limit), hands the app an identical copy, and
records the request with the status the app answered.  SAML messages are decoded by the IdP's
own readers (:func:`idp.saml.messages.read_authn_request`); passwords and client secrets are
masked, never kept.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from idp.saml.messages import read_authn_request
from idp.saml.xml import decode_message

MASKED = "***"
SECRET_PARAMS = frozenset({"password", "client_secret", "client_assertion"})
KINDS: dict[str, str] = {
    "/saml/sso": "saml_sso", "/saml/slo": "saml_slo", "/saml/idp-initiated": "saml_idp_initiated",
    "/saml/metadata": "saml_metadata", "/oauth2/authorize": "authorize", "/oauth2/token": "token",
    "/oauth2/userinfo": "userinfo", "/oauth2/introspect": "introspect",
    "/oauth2/revoke": "revoke", "/oauth2/logout": "oidc_logout", "/oauth2/jwks": "jwks",
    "/oauth2/device_authorization": "device_authorization", "/device": "device",
    "/.well-known/openid-configuration": "discovery", "/sts": "sts", "/sts/decide": "sts_decide",
    "/iam": "iam", "/federation/saml": "federation", "/login": "login", "/logout": "logout",
    "/account": "account",
}
"""Request kinds by path; any other path is ``other``."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request: what was asked (``params``: query and form, secrets masked), what it
    means (``parsed``: AuthnRequest fields, STS action…) and the status answered."""

    kind: str
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    parsed: dict[str, Any] = field(default_factory=dict)
    status: int = 0


def _params(environ: dict[str, Any], body: bytes) -> dict[str, str]:
    out = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if body and ctype in ("", "application/x-www-form-urlencoded"):
        out.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {k: MASKED if k in SECRET_PARAMS else v for k, v in out.items()}


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items()
           if k.startswith("HTTP_")}
    if "Authorization" in out:
        out["Authorization"] = out["Authorization"].split(" ", 1)[0] + " " + MASKED
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = environ["CONTENT_TYPE"]
    return out


def parse(kind: str, method: str, params: dict[str, str]) -> dict[str, Any]:
    """What a request means, as far as the kit can tell without answering it."""
    if kind == "saml_sso" and params.get("SAMLRequest"):
        redirect = method == "GET"
        try:
            root = decode_message(params["SAMLRequest"], redirect=redirect, limit=1 << 20)
            req = dataclasses.asdict(read_authn_request(root))
        except Exception as exc:  # a malformed request is recorded as such
            return {"error": str(getattr(exc, "description", exc))}
        signed = "Signature" in params or root.find(
            "{http://www.w3.org/2000/09/xmldsig#}Signature") is not None
        return {**req, "binding": "redirect" if redirect else "post", "signed": signed,
                "relay_state": params.get("RelayState")}
    if kind in ("sts", "iam"):
        return {"action": params.get("Action"), "version": params.get("Version")}
    if kind == "token":
        return {"grant_type": params.get("grant_type"), "client_id": params.get("client_id")}
    if kind == "authorize":
        return {k: params[k] for k in ("client_id", "redirect_uri", "scope", "response_type",
                                       "state", "nonce", "code_challenge_method", "prompt")
                if k in params}
    return {}


class Recorder:
    """WSGI middleware recording requests; ``limit`` bounds the body it buffers."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int) -> None:
        self.app = app
        self.limit = limit
        self._items: list[RecordedRequest] = []
        self._cond = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = b""
        if 0 < length <= self.limit:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        kind = KINDS.get(path, "other")
        params = _params(environ, body)
        status: list[int] = []

        def recording_start(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(code.split(" ", 1)[0]))
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, recording_start)
        finally:
            item = RecordedRequest(kind, method, path, params, _headers(environ),
                                   parse(kind, method, params), status[0] if status else 0)
            with self._cond:
                self._items.append(item)
                self._cond.notify_all()

    def all(self, kind: str | None = None) -> list[RecordedRequest]:
        with self._cond:
            return [r for r in self._items if kind is None or r.kind == kind]

    def take(self, kind: str | None = None, timeout: float = 2.0) -> RecordedRequest | None:
        """The oldest recorded request (of ``kind``), removed; waits up to ``timeout``."""
        with self._cond:
            found = self._cond.wait_for(
                lambda: any(kind is None or r.kind == kind for r in self._items), timeout)
            if not found:
                return None
            for i, r in enumerate(self._items):
                if kind is None or r.kind == kind:
                    return self._items.pop(i)
        return None

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
