"""The bug classes an outside review found (5xx answers and disagreeing paths), now fixed.

``BUG_CLASSES`` names each class with a predicate over generated requests.  The property test
excuses nothing: it counts how many generated requests fall in each class, so the summary
shows that the CI profile still reaches every class, and ``test_known.py`` keeps one exact
reproduction of each as a regression test.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from tests.fuzz.model import FuzzRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_CLIENT_AUTH_ROUTES = {"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke",
                       "/oauth2/device_authorization", "/sts/decide"}


@dataclass(frozen=True)
class Known:
    """A bug class: the routes it affected, which requests belong to it, and what it was."""

    id: str
    routes: frozenset[str]
    matches: Callable[[FuzzRequest], bool]
    reason: str


def _non_decimal_digit(value: str) -> bool:
    """``str.isdigit`` accepts it but ``int`` does not (``²``, ``①``)."""
    return value.isdigit() and not value.isdecimal()


def _max_age(req: FuzzRequest) -> bool:
    return any(_non_decimal_digit(v) for v in req.param("max_age"))


def _assertion_payload_not_object(req: FuzzRequest) -> bool:
    candidates = req.param("client_assertion")
    if req.rule == "/sts/decide":
        try:
            doc = json.loads(req.body)
        except (ValueError, RecursionError):
            return False
        if isinstance(doc, dict) and isinstance(doc.get("client_assertion"), str):
            candidates.append(doc["client_assertion"])
    for assertion in candidates:
        parts = assertion.split(".")
        if len(parts) < 2:
            continue
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, RecursionError):
            continue
        if not isinstance(payload, dict):
            return True
    return False


def _bad_calendar(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return True
    return False


def _signed_fields(query: str, headers: dict[str, str]) -> tuple[list[str], list[str]]:
    """The X-Amz-Date and X-Amz-Expires values SigV4 verification reads: from a presigned
    query, else from the headers of a header-signed request."""
    q = dict(parse_qsl(query, keep_blank_values=True, errors="replace"))
    if "X-Amz-Signature" in q:
        return [q.get("X-Amz-Date", "")], [q.get("X-Amz-Expires", "")]
    low = {k.lower(): v for k, v in headers.items()}
    if low.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
        return [low.get("x-amz-date", "")], []
    return [], []


def _sigv4_date_or_expires(req: FuzzRequest) -> bool:
    dates, expires = _signed_fields(req.query, req.headers)
    if req.rule == "/sts/decide":
        try:
            inner = json.loads(req.body).get("request")
        except (ValueError, RecursionError, AttributeError):
            inner = None
        if isinstance(inner, dict) and isinstance(inner.get("query", ""), str) \
                and isinstance(inner.get("headers", {}), dict):
            d, e = _signed_fields(inner.get("query", ""),
                                  {str(k): str(v) for k, v in inner.get("headers", {}).items()})
            dates, expires = dates + d, expires + e
    return any(_AMZ_DATE.fullmatch(d) and _bad_calendar(d) for d in dates) \
        or any(_non_decimal_digit(v.strip()) for v in expires)


def _deep_json(req: FuzzRequest) -> bool:
    return req.body.count(b"[") + req.body.count(b"{") > 900


def _form_over_100_fields(req: FuzzRequest) -> bool:
    return req.body.count(b"&") >= 99


BUG_CLASSES: tuple[Known, ...] = (
    Known("authorize-max-age-unicode-digit", frozenset({"/oauth2/authorize"}), _max_age,
          "max_age=² passes str.isdigit but int() raises (OIDC Core §3.1.2.1)"),
    Known("client-assertion-payload-not-object", frozenset(_CLIENT_AUTH_ROUTES),
          _assertion_payload_not_object,
          "private_key_jwt assertion whose payload is a JSON list or string: .get on a "
          "non-object, should be 401 invalid_client (RFC 7523 §3)"),
    Known("sigv4-bad-date-or-expires", frozenset({"/sts", "/iam", "/sts/decide"}),
          _sigv4_date_or_expires,
          "X-Amz-Date=20261399T999999Z passes the regex but not strptime; "
          "X-Amz-Expires=² passes isdigit but not int: InternalFailure instead of AWS's 4xx"),
    Known("decide-deep-json", frozenset({"/sts/decide"}), _deep_json,
          "JSON nested 100,000 deep parsed before client authentication: RecursionError"),
    Known("oauth-form-over-100-fields-parity",
          frozenset({"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"}),
          _form_over_100_fields,
          "over 100 form fields: the fast path answers 400 malformed form body, the Flask "
          "route parses them all (not a 5xx: the two paths disagree)"),
)


def known_bug(req: FuzzRequest) -> Known | None:
    """The bug class ``req`` belongs to, if any."""
    for entry in BUG_CLASSES:
        if req.rule in entry.routes and entry.matches(req):
            return entry
    return None
