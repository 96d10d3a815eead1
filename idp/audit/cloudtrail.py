"""CloudTrail's ``LookupEvents`` over the audit index (AWS JSON 1.1 protocol; CloudTrail API
Reference, "LookupEvents"; shapes as botocore's ``cloudtrail/2013-11-01`` model has them).

Pure: a target and a JSON body in, a status and a JSON document out.  Authentication (SigV4)
and authorization (``cloudtrail:LookupEvents`` through the IAM engine) are the caller's.
``NextToken`` is opaque: the position after the page's last event and a hash of the request's
other parameters, MACed with the server's secret, so that a token is refused with another
query (as CloudTrail refuses it) or when altered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from typing import Any

from idp.audit.index import ATTRIBUTES, AuditIndex, Query, access_key_id, epoch, username

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_RESULTS = 50
_MAX_VALUE = 2000


class CloudTrailError(Exception):
    """An error answer: ``__type`` and ``message`` (JSON 1.1 protocol errors)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LookupEvents:
    """The ``LookupEvents`` action over one index."""

    def __init__(self, index: AuditIndex, secret: bytes) -> None:
        self.index = index
        self._key = hashlib.sha256(b"idp cloudtrail next token\0" + secret).digest()

    def handle(self, body: bytes) -> dict[str, Any]:
        """Run one request (raises :class:`CloudTrailError`)."""
        try:
            doc = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise CloudTrailError("SerializationException", "the body is not JSON") from exc
        if not isinstance(doc, dict):
            raise CloudTrailError("SerializationException", "the body is not a JSON object")
        attrs = self._attributes(doc.get("LookupAttributes"))
        start, end = _time(doc, "StartTime"), _time(doc, "EndTime")
        if start is not None and end is not None and start > end:
            raise CloudTrailError("InvalidTimeRangeException",
                                  "Start time must be before end time")
        limit = doc.get("MaxResults", MAX_RESULTS)
        if type(limit) is not int or not 1 <= limit <= MAX_RESULTS:
            raise CloudTrailError("InvalidMaxResultsException",
                                  f"MaxResults must be between 1 and {MAX_RESULTS}")
        category = doc.get("EventCategory")
        if category is not None and category != "insight":
            raise CloudTrailError("InvalidEventCategoryException",
                                  "EventCategory must be insight")
        fingerprint = self._fingerprint(attrs, start, end, category)
        after = self._read_token(doc.get("NextToken"), fingerprint)
        if category == "insight":  # no Insights events here
            return {"Events": []}
        events, position = self.index.lookup(Query(attrs, start, end, limit, after))
        out: dict[str, Any] = {"Events": [cloudtrail_event(e) for e in events]}
        if position is not None:
            out["NextToken"] = self._token(position, fingerprint)
        return out

    @staticmethod
    def _attributes(value: Any) -> list[tuple[str, str]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise CloudTrailError("InvalidLookupAttributesException",
                                  "LookupAttributes must be a list")
        if len(value) > 1:
            raise CloudTrailError("InvalidLookupAttributesException",
                                  "LookupAttributes can contain only one item")
        out = []
        for item in value:
            key = item.get("AttributeKey") if isinstance(item, dict) else None
            val = item.get("AttributeValue") if isinstance(item, dict) else None
            if key not in ATTRIBUTES:
                raise CloudTrailError("InvalidLookupAttributesException",
                                      f"AttributeKey must be one of {', '.join(ATTRIBUTES)}")
            if not isinstance(val, str) or not 1 <= len(val) <= _MAX_VALUE:
                raise CloudTrailError("InvalidLookupAttributesException",
                                      "AttributeValue must be 1 to 2000 characters")
            out.append((key, val))
        return out

    def _fingerprint(self, attrs: list[tuple[str, str]], start: float | None,
                     end: float | None, category: Any) -> str:
        canon = json.dumps([attrs, start, end, category], separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:32]

    def _token(self, position: tuple[int, int], fingerprint: str) -> str:
        payload = json.dumps([position[0], position[1], fingerprint],
                             separators=(",", ":")).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return _b64u(payload) + "." + _b64u(mac)

    def _read_token(self, token: Any, fingerprint: str) -> tuple[int, int] | None:
        if token is None:
            return None
        bad = CloudTrailError("InvalidNextTokenException", "Invalid NextToken")
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 512:
            raise bad
        try:
            p, m = (base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
                    for s in token.split("."))
            expected = hmac.new(self._key, p, hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(m, expected):
                raise bad
            t, i, fp = json.loads(p)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise bad from exc
        if fp != fingerprint or type(t) is not int or type(i) is not int:
            raise bad
        return t, i


def _time(doc: Mapping[str, Any], name: str) -> float | None:
    """A ``Date`` member: epoch seconds (the JSON protocol's default timestamp format)."""
    value = doc.get(name)
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise CloudTrailError("InvalidTimeRangeException", f"{name} must be a timestamp")
    return float(value)


def cloudtrail_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """An ``Event`` of ``LookupEventsResponse`` from one record."""
    event: dict[str, Any] = {
        "EventId": record.get("eventID", ""),
        "EventName": record.get("eventName", ""),
        "ReadOnly": "true" if record.get("readOnly") else "false",
        "EventTime": epoch(str(record.get("eventTime"))),
        "EventSource": record.get("eventSource", ""),
        "Resources": [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
                      for r in record.get("resources") or [] if isinstance(r, Mapping)],
        "CloudTrailEvent": json.dumps(record, separators=(",", ":"), sort_keys=True),
    }
    user = username(record)
    if user:
        event["Username"] = user
    akid = access_key_id(record)
    if akid:
        event["AccessKeyId"] = akid
    return event
