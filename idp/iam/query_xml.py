"""AWS Query protocol XML for the IAM API (namespace ``https://iam.amazonaws.com/doc/2010-05-08/``).

Response envelope ``<XResponse><XResult>…</XResult><ResponseMetadata><RequestId>`` and error
envelope ``<ErrorResponse><Error><Type>Sender</Type><Code>…`` as in the IAM API Reference,
"Common Errors" and every action's "Response Elements"; lists are ``<member>`` elements and maps
``<entry><key/><value/></entry>`` (botocore ``query`` protocol).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from idp.iam.errors import IamError

NS = "https://iam.amazonaws.com/doc/2010-05-08/"

_INDEX = re.compile(r"[0-9]{1,9}")
"""A list index or count: ASCII digits only (``str.isdigit`` admits ``²``, ``int`` refuses it)."""


class QueryError(IamError):
    """An IAM Query API error: AWS code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


def el(name: str, value: object) -> str:
    """``<name>value</name>``; booleans as ``true``/``false``, datetimes in ISO 8601."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        text = escape(str(value))
    return f"<{name}>{text}</{name}>"


def members(name: str, items: Iterable[str]) -> str:
    """A list: ``<name><member>…</member>…</name>`` (items are already XML)."""
    return f"<{name}>{''.join(f'<member>{i}</member>' for i in items)}</{name}>"


def entries(name: str, mapping: Mapping[str, str]) -> str:
    body = "".join(f"<entry>{el('key', k)}{el('value', v)}</entry>" for k, v in mapping.items())
    return f"<{name}>{body}</{name}>"


def response(action: str, result: str, request_id: str) -> str:
    return (f'<{action}Response xmlns="{NS}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata>{el('RequestId', request_id)}</ResponseMetadata>"
            f"</{action}Response>")


def error(code: str, message: str, request_id: str, *, status: int = 400) -> str:
    """An error document; ``Type`` is ``Receiver`` for a 5xx (ours), else ``Sender``."""
    fault = "Receiver" if status >= 500 else "Sender"
    return (f'<ErrorResponse xmlns="{NS}"><Error><Type>{fault}</Type>{el("Code", code)}'
            f"{el('Message', message)}</Error>{el('RequestId', request_id)}</ErrorResponse>")


def policy_document(doc: Mapping[str, object]) -> str:
    """Policy documents in IAM responses are URL-encoded JSON (e.g. ``GetRole``)."""
    return urllib.parse.quote(json.dumps(doc, separators=(",", ":")), safe="")


def member_list(params: Mapping[str, str], prefix: str) -> list[str]:
    """``Prefix.member.1``, ``Prefix.member.2``… in order (the query serialization of lists)."""
    out: list[tuple[int, str]] = []
    head = f"{prefix}.member."
    for key, value in params.items():
        if key.startswith(head) and _INDEX.fullmatch(key[len(head):]):
            out.append((int(key[len(head):]), value))
    return [v for _, v in sorted(out)]


def member_indexes(params: Mapping[str, str], prefix: str) -> list[int]:
    """The ``N`` of every ``Prefix.member.N.…`` key, sorted."""
    head = f"{prefix}.member."
    found = set()
    for key in params:
        if key.startswith(head):
            n = key[len(head):].split(".", 1)[0]
            if _INDEX.fullmatch(n):
                found.add(int(n))
    return sorted(found)


def page(params: Mapping[str, str], total: int) -> tuple[int, int]:
    """(start, stop) from ``Marker``/``MaxItems`` (1–1000, default 100)."""
    raw_max = params.get("MaxItems", "100")
    if not re.fullmatch(r"-?[0-9]{1,9}", raw_max):
        raise QueryError("InvalidParameterValue",
                         f"Invalid value for parameter MaxItems: {raw_max[:20]}")
    max_items = int(raw_max)
    if not 1 <= max_items <= 1000:
        raise QueryError("ValidationError", "1 validation error detected: Value "
                         f"'{max_items}' at 'maxItems' failed to satisfy constraint: Member must "
                         "have value between 1 and 1000")
    start = 0
    if "Marker" in params:
        try:
            text = base64.urlsafe_b64decode(params["Marker"].encode()).decode()
        except (ValueError, UnicodeError):
            text = ""
        if not _INDEX.fullmatch(text) or not 0 <= int(text) <= total:
            raise QueryError("InvalidParameterValue", "Invalid value for parameter Marker")
        start = int(text)
    return start, min(start + max_items, total)


def marker(stop: int, total: int) -> str:
    if stop >= total:
        return el("IsTruncated", False)
    token = base64.urlsafe_b64encode(str(stop).encode()).decode()
    return el("IsTruncated", True) + el("Marker", token)
