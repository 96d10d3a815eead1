"""The error shape each route must answer in, and the checks every answer must pass.

``ROUTE_SHAPES`` is the one table: a route of ``app.url_map`` without an entry fails
``test_every_route_has_a_protocol_shape``, so a new route is fuzzed (and its shape decided) the
day it is added.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable

from werkzeug.test import TestResponse

OAUTH = "oauth"  # RFC 6749 §5.2 JSON, ``error`` member
AWS = "aws"  # AWS Query API error XML: <ErrorResponse><Error><Code>, 4xx
DECIDE = "decide"  # the decision endpoint's JSON (``error`` member)
BROWSER = "browser"  # an HTML page (error page or form) or a redirect
SAML = "saml"  # a SAML status (POST form or redirect to the SP) or the 400 page
JSON_DOC = "json-doc"  # a public JSON document (discovery, JWKS): JSON, or the HTML error page
XML_DOC = "xml-doc"  # SAML metadata: XML, or the HTML error page
HEALTH = "health"  # liveness/readiness: a short JSON or text answer
STATIC = "static"  # a static file, or the HTML error page
AWS_JSON11 = "aws-json-1.1"  # AWS JSON 1.1 (CloudTrail): that content type, ``__type`` on errors
AWS_JSON = "aws-json"  # AWS REST-JSON (SSO OIDC, SSO portal): JSON, ``x-amzn-ErrorType`` on errors

ROUTE_SHAPES: dict[str, str] = {
    "/": BROWSER,
    "/login": BROWSER,
    "/logout": BROWSER,
    "/account": BROWSER,
    "/account/password": BROWSER,
    "/account/password/check": JSON_DOC,
    "/account/forgot": BROWSER,
    "/account/reset": BROWSER,
    "/account/applications/revoke": BROWSER,
    "/account/sessions/sign-out-others": BROWSER,
    "/healthz": HEALTH,
    "/readyz": HEALTH,
    "/saml/metadata": XML_DOC,
    "/saml/sso": SAML,
    "/saml/idp-initiated": SAML,
    "/saml/slo": SAML,
    "/.well-known/openid-configuration": JSON_DOC,
    "/oauth2/jwks": JSON_DOC,
    "/oauth2/authorize": BROWSER,
    "/oauth2/token": OAUTH,
    "/oauth2/userinfo": OAUTH,
    "/oauth2/introspect": OAUTH,
    "/oauth2/revoke": OAUTH,
    "/oauth2/device_authorization": OAUTH,
    "/oauth2/logout": BROWSER,
    "/device": BROWSER,
    "/sts": AWS,
    "/sts/decide": DECIDE,
    "/iam": AWS,
    "/federation/saml": BROWSER,
    "/static/<path:filename>": STATIC,
    "/sso-oidc/authorize": BROWSER,
    "/sso-oidc/client/register": AWS_JSON,
    "/sso-oidc/device_authorization": AWS_JSON,
    "/sso-oidc/token": AWS_JSON,
    "/sso-portal/assignment/accounts": AWS_JSON,
    "/sso-portal/assignment/roles": AWS_JSON,
    "/sso-portal/federation/credentials": AWS_JSON,
    "/sso-portal/logout": AWS_JSON,
    "/start": BROWSER,
    "/start/": BROWSER,
    "/login/mfa": BROWSER,
    "/login/mfa/send": BROWSER,
    "/account/mfa": BROWSER,
    "/account/mfa/passkey": BROWSER,
    "/account/mfa/passkey/confirm": BROWSER,
    "/account/mfa/recovery": BROWSER,
    "/account/mfa/remove": BROWSER,
    "/account/mfa/rename": BROWSER,
    "/account/mfa/sent": BROWSER,
    "/account/mfa/sent/confirm": BROWSER,
    "/account/mfa/totp": BROWSER,
    "/account/mfa/totp/confirm": BROWSER,
    "/audit/keys": JSON_DOC,
    "/cloudtrail": AWS_JSON11,
    "/cloudtrail/": AWS_JSON11,
}

_EXC_NAMES = sorted(n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
                    and issubclass(getattr(builtins, n), BaseException)
                    and n not in ("BaseException", "Exception", "Warning"))
# ``ValidationError`` is left out on purpose: it is an AWS error code
_LIB_EXC = ["XMLSyntaxError", "JoseError", "DecodeError", "BadSignatureError",
            "InvalidSignature", "JSONDecodeError", "XMLSecurityError", "IdpError", "StsError",
            "OAuthError", "IamError", "QueryError", "SamlStatusError", "pydantic"]
TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]*\", line \d+|site-packages|"
    r"/idp/[\w/]+\.py|\b(?:" + "|".join(map(re.escape, _EXC_NAMES + _LIB_EXC)) + r")\b")


def _ctype(resp: TestResponse) -> str:
    return (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _json(resp: TestResponse) -> object:
    try:
        return json.loads(resp.get_data())
    except ValueError:
        return None


def _oauth(resp: TestResponse) -> str | None:
    if _ctype(resp) != "application/json":
        return f"content type {_ctype(resp)!r}, not application/json"
    doc = _json(resp)
    if resp.status_code >= 400 and not (isinstance(doc, dict) and isinstance(doc.get("error"),
                                                                              str)):
        return "no OAuth `error` member"
    return None


def _aws(resp: TestResponse) -> str | None:
    if _ctype(resp) != "text/xml":
        return f"content type {_ctype(resp)!r}, not text/xml"
    body = resp.get_data()
    if resp.status_code >= 400 and not (b"<ErrorResponse" in body and b"<Code>" in body):
        return "no <ErrorResponse> with <Code>"
    return None


def _decide(resp: TestResponse) -> str | None:
    if _ctype(resp) != "application/json":
        return f"content type {_ctype(resp)!r}, not application/json"
    doc = _json(resp)
    if resp.status_code >= 400 and not (isinstance(doc, dict) and doc.get("error")):
        return "no `error` member"
    return None


def _aws_json(resp: TestResponse) -> str | None:
    if _ctype(resp) != "application/json":
        return f"content type {_ctype(resp)!r}, not application/json"
    if resp.status_code >= 400 and not resp.headers.get("x-amzn-ErrorType"):
        return "no x-amzn-ErrorType header"
    return None


def _aws_json11(resp: TestResponse) -> str | None:
    if _ctype(resp) != "application/x-amz-json-1.1":
        return f"content type {_ctype(resp)!r}, not application/x-amz-json-1.1"
    doc = _json(resp)
    if resp.status_code >= 400 and not (isinstance(doc, dict) and doc.get("__type")):
        return "no `__type` member"
    return None


def _page_or_redirect(resp: TestResponse) -> str | None:
    if 300 <= resp.status_code < 400:
        return None if resp.headers.get("Location") else "redirect without Location"
    if _ctype(resp) != "text/html":
        return f"content type {_ctype(resp)!r}, not an HTML page"
    return None


def _document(ctype: str) -> Callable[[TestResponse], str | None]:
    def check(resp: TestResponse) -> str | None:
        if resp.status_code < 400:
            return None if _ctype(resp) == ctype else f"content type {_ctype(resp)!r}"
        return _page_or_redirect(resp)

    return check


def _health(resp: TestResponse) -> str | None:
    if resp.status_code >= 400 and resp.status_code != 405:
        return f"status {resp.status_code}"
    return None


def _static(resp: TestResponse) -> str | None:
    return None if resp.status_code < 400 else _page_or_redirect(resp)


CHECKS: dict[str, Callable[[TestResponse], str | None]] = {
    OAUTH: _oauth, AWS: _aws, AWS_JSON: _aws_json, AWS_JSON11: _aws_json11, DECIDE: _decide,
    BROWSER: _page_or_redirect,
    SAML: _page_or_redirect, JSON_DOC: _document("application/json"),
    XML_DOC: _document("application/samlmetadata+xml"), HEALTH: _health, STATIC: _static,
}


def problems(shape: str, method: str, resp: TestResponse) -> list[str]:
    """Everything wrong with an answer: a 5xx, a traceback, or the wrong error shape."""
    found = []
    if resp.status_code >= 500:
        found.append(f"status {resp.status_code}")
    body = resp.get_data().decode("utf-8", "replace")
    m = TRACEBACK.search(body)
    if m:
        found.append(f"traceback-like text in the body: {m.group(0)!r}")
    if method in ("HEAD", "OPTIONS"):  # no body to shape (OPTIONS: the automatic Allow answer)
        return found
    problem = CHECKS[shape](resp)
    if problem:
        found.append(f"wrong {shape} shape: {problem}")
    return found
