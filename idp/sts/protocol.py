"""The AWS Query protocol of STS: requests in, XML out (AWS STS API Reference, "Making Query
requests"; botocore ``sts/2011-06-15/service-2.json`` for every shape and constraint).

A :class:`QueryRequest` is what the web layer hands to the core: the raw HTTP parts (needed by
SigV4) and the decoded parameters.  Responses are ``<XResponse><XResult>…</XResult>
<ResponseMetadata><RequestId>`` and errors ``<ErrorResponse><Error><Type><Code><Message>
</Error><RequestId>``, exactly as AWS writes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from idp.sts.errors import StsError, err, validation

XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"


@dataclass(frozen=True)
class QueryRequest:
    """One HTTP request to ``/sts`` (or ``/iam``, the decision endpoint) as plain data.

    ``query`` is the raw query string (undecoded), ``body`` the raw body; ``headers`` keys are
    lower-case.  ``params`` are the decoded Query parameters (form body + query string).
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    params: Mapping[str, str]
    source_ip: str = ""
    user_agent: str = ""
    secure: bool = False
    request_id: str = ""


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` to pairs, percent-decoded, ``+`` as space (HTML form encoding)."""
    out: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out.append((unquote(k.replace("+", " ")), unquote(v.replace("+", " "))))
    return out


def build_request(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
                  **extra: Any) -> QueryRequest:
    """Decode the Query parameters (query string, then a form body) of a raw request."""
    params: dict[str, str] = {}
    for k, v in parse_pairs(query):
        params.setdefault(k, v)
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if method == "POST" and body and ctype in ("", "application/x-www-form-urlencoded"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise err("MalformedQueryString", "the request body is not UTF-8") from exc
        for k, v in parse_pairs(text):
            params[k] = v
    return QueryRequest(method, path, query, {k.lower(): v for k, v in headers.items()}, body,
                        params, **extra)


# -- parameters -------------------------------------------------------------------------------

_INDEX = re.compile(r"[0-9]{1,9}")
"""A list index: ASCII digits only (``str.isdigit`` admits ``²``, which ``int`` refuses)."""


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass(frozen=True)
class Str:
    """A string member: length bounds and pattern from the botocore model."""

    name: str
    min: int = 0
    max: int = 1 << 20
    pattern: str | None = None
    required: bool = False

    def get(self, params: Mapping[str, str]) -> str | None:
        value = params.get(self.name)
        if value is None or (value == "" and not self.required and self.min > 0):
            if self.required:
                raise err("MissingParameter",
                          f"The request must contain the parameter {self.name}")
            return None
        field_name = _lower_first(self.name)
        if len(value) < self.min:
            raise validation(field_name, value,
                             f"Member must have length greater than or equal to {self.min}")
        if len(value) > self.max:
            raise validation(field_name, value,
                             f"Member must have length less than or equal to {self.max}")
        # botocore's patterns are Java regular expressions, whose \w and \d are ASCII
        if self.pattern and not re.fullmatch(self.pattern, value, re.ASCII):
            raise validation(field_name, value,
                             f"Member must satisfy regular expression pattern: {self.pattern}")
        return value


@dataclass(frozen=True)
class Int:
    name: str
    min: int
    max: int

    def get(self, params: Mapping[str, str]) -> int | None:
        value = params.get(self.name)
        if value is None:
            return None
        if not re.fullmatch(r"-?[0-9]{1,12}", value):  # ASCII digits: `²` or `٣` are not
            raise err("ValidationError", f"Value '{value[:20]}' at '{_lower_first(self.name)}'"
                      " is not a valid integer")
        n = int(value)
        if n < self.min:
            raise validation(_lower_first(self.name), n,
                             f"Member must have value greater than or equal to {self.min}")
        if n > self.max:
            raise validation(_lower_first(self.name), n,
                             f"Member must have value less than or equal to {self.max}")
        return n


def members(params: Mapping[str, str], name: str, max_items: int) -> list[dict[str, str]]:
    """A Query list of structures: ``Name.member.N.Field`` (N from 1, contiguous)."""
    prefix = f"{name}.member."
    found: dict[int, dict[str, str]] = {}
    for k, v in params.items():
        if not k.startswith(prefix):
            continue
        idx, _, fld = k[len(prefix):].partition(".")
        if not _INDEX.fullmatch(idx) or not 1 <= int(idx) <= 1000:
            raise err("InvalidParameterValue", f"invalid list index in `{k[:80]}`")
        found.setdefault(int(idx), {})[fld] = v
    if len(found) > max_items:
        raise validation(_lower_first(name), f"[{len(found)} items]",
                         f"Member must have length less than or equal to {max_items}")
    return [found[i] for i in sorted(found)]


def string_list(params: Mapping[str, str], name: str, max_items: int) -> list[str]:
    """A Query list of strings: ``Name.member.N``."""
    prefix = f"{name}.member."
    items = {int(k[len(prefix):]): v for k, v in params.items()
             if k.startswith(prefix) and _INDEX.fullmatch(k[len(prefix):])}
    if len(items) > max_items:
        raise validation(_lower_first(name), f"[{len(items)} items]",
                         f"Member must have length less than or equal to {max_items}")
    return [items[i] for i in sorted(items)]


# -- XML --------------------------------------------------------------------------------------

Xml = Mapping[str, Any] | list[tuple[str, Any]]


def _render(value: Any) -> str:
    if isinstance(value, Mapping):
        value = list(value.items())
    if isinstance(value, list):
        out = []
        for k, v in value:
            if v is None:
                continue
            if isinstance(v, list) and v and isinstance(v[0], Mapping):  # a list member
                inner = "".join(f"<member>{_render(m)}</member>" for m in v)
                out.append(f"<{k}>{inner}</{k}>")
            else:
                out.append(f"<{k}>{_render(v)}</{k}>")
        return "".join(out)
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def response(action: str, result: Xml | None, request_id: str) -> str:
    """A success document: ``<{Action}Response xmlns=…><{Action}Result>…``."""
    body = f"<{action}Result>{_render(result or {})}</{action}Result>"
    return (f'<{action}Response xmlns="{XMLNS}">{body}<ResponseMetadata><RequestId>'
            f"{escape(request_id)}</RequestId></ResponseMetadata></{action}Response>")


def error(exc: StsError, request_id: str) -> str:
    """An error document as AWS STS writes it."""
    return (f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>{exc.fault}</Type>'
            f"<Code>{escape(exc.code)}</Code><Message>{escape(exc.description)}</Message>"
            f"</Error><RequestId>{escape(request_id)}</RequestId></ErrorResponse>")


@dataclass
class Result:
    """What the core answers: an HTTP status and an XML (or JSON) body."""

    status: int
    body: str
    content_type: str = "text/xml"
    headers: dict[str, str] = field(default_factory=dict)
