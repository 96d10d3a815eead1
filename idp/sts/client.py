"""A small client for the decision endpoint (``POST /sts/decide``), for resource servers.

    client = DecisionClient("https://idp.example.org", client_id="storage",
                            client_secret=secret)
    answer = client.decide(method, path, query, headers, body, action="s3:GetObject",
                           resource="arn:aws:s3:::bucket/key")
    if not answer.allowed: ...  # answer.reason, answer.encoded_message
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus


@dataclass(frozen=True)
class Answer:
    allowed: bool
    principal: str | None
    reason: str
    encoded_message: str | None
    raw: Mapping[str, Any]


class DecisionClient:
    """The resource server authenticates as a confidential OAuth client of the IdP registered
    for ``client_secret_basic`` (RFC 6749 §2.3.1: both parts form-urlencoded, then base64)."""

    def __init__(self, issuer: str, *, client_id: str, client_secret: str,
                 timeout: float = 5.0) -> None:
        self.url = issuer.rstrip("/") + "/sts/decide"
        self.timeout = timeout
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode()

    def decide(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes, *, action: str, resource: str = "*",
               context: Mapping[str, Any] | None = None, service: str | None = None,
               source_ip: str = "") -> Answer:
        doc = {"request": {"method": method, "path": path, "query": query,
                           "headers": dict(headers),
                           "body_b64": base64.b64encode(body).decode()},
               "action": action, "resource": resource, "context": dict(context or {}),
               "service": service, "source_ip": source_ip}
        req = urllib.request.Request(self.url, json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": self._authorization})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
            out = json.loads(resp.read())
        return Answer(out.get("decision") == "Allow", out.get("principal"),
                      str(out.get("reason", "")), out.get("encodedAuthorizationMessage"), out)
