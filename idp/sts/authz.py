"""The decision endpoint core: may the signer of this request do this action on this resource?

A resource server hands over the SigV4 parts of a request it received, the action, the
resource and its own request context; the answer is Allow or Deny from the session's effective
policies (role policies ∩ session policies, boundaries, SCPs), with the statements that decided
and, on deny, an encoded authorization message that ``DecodeAuthorizationMessage`` reveals to a
principal allowed ``sts:DecodeAuthorizationMessage`` (STS API Reference,
``DecodeAuthorizationMessage``).  Messages are AES-GCM sealed with a key derived from the IdP
secret: opaque to whoever gets them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.audit import RequestInfo
from idp.iam import Request, evaluate
from idp.iam.evaluate import NO_PERMISSION_ACTION
from idp.sts.errors import StsError
from idp.sts.protocol import QueryRequest, build_request

if TYPE_CHECKING:
    from idp.sts.service import StsService


MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a decision document may have (a real one has 4)."""

_JSON_SPECIAL = re.compile(rb'[\[\]{}"\\]')


def parse_bounded_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON text (RFC 8259) whose arrays and objects nest at most ``max_depth`` deep;
    ``ValueError`` otherwise.  The depth is counted by a scan of the brackets outside strings
    before anything is parsed, so no input reaches the recursive parser deeper than that."""
    depth = 0
    in_string = False
    escaped = -1
    for m in _JSON_SPECIAL.finditer(raw):
        i = m.start()
        c = raw[i]
        if in_string:
            if i == escaped:
                continue
            if c == 0x5C:  # backslash: the next byte is escaped
                escaped = i + 1
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > max_depth:
                raise ValueError(f"the JSON document is nested deeper than {max_depth} levels")
        elif c in (0x5D, 0x7D):
            depth -= 1
    return json.loads(raw)


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"idp-sts-authorization-message", hashlib.sha256).digest()


def encode_message(secret: bytes, message: Mapping[str, Any]) -> str:
    nonce = os.urandom(12)
    data = json.dumps(message, separators=(",", ":")).encode()
    sealed = AESGCM(_key(secret)).encrypt(nonce, data, b"v1")
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def decode_message(secret: bytes, encoded: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        data = AESGCM(_key(secret)).decrypt(raw[:12], raw[12:], b"v1")
        out = json.loads(data)
    except (ValueError, InvalidTag):
        return None
    return out if isinstance(out, dict) else None


@dataclass(frozen=True)
class DecisionQuery:
    """What a resource server asks (``headers`` names in any case; ``body`` raw bytes)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    action: str
    resource: str = "*"
    context: Mapping[str, Any] = field(default_factory=dict)
    service: str | None = None
    source_ip: str = ""
    secure: bool | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DecisionQuery:
        req = doc.get("request")
        if not isinstance(req, Mapping) or not isinstance(doc.get("action"), str):
            raise ValueError("`request` and `action` are required")
        body = base64.b64decode(str(req.get("body_b64", "")), validate=True)
        ctx = doc.get("context") or {}
        if not isinstance(ctx, Mapping):
            raise ValueError("`context` must be an object")
        headers = req.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError("`request.headers` must be an object")
        return cls(str(req.get("method", "GET")), str(req.get("path", "/")),
                   str(req.get("query", "")), {str(k): str(v) for k, v in headers.items()},
                   body, str(doc["action"]), str(doc.get("resource", "*")), dict(ctx),
                   doc.get("service") if isinstance(doc.get("service"), str) else None,
                   str(doc.get("source_ip", "")),
                   doc.get("secure") if isinstance(doc.get("secure"), bool) else None)


def decide(svc: StsService, q: DecisionQuery, info: RequestInfo, *,
           client_id: str | None = None) -> dict[str, Any]:
    """Authenticate the request's signature, then evaluate; deny on any doubt.  ``client_id``
    (the resource server that asked, authenticated by the caller) goes into the audit."""
    req: QueryRequest = build_request(q.method.upper(), q.path, q.query,
                                      {k.lower(): v for k, v in q.headers.items()}, b"",
                                      source_ip=q.source_ip)
    req = QueryRequest(req.method, req.path, req.query, req.headers, q.body, req.params,
                       q.source_ip)
    try:
        caller = svc.authenticate(req, q.service)
    except StsError as exc:
        svc.audit_refusal("Decide", info, exc, client_id=client_id)
        return {"decision": "Deny", "reason": exc.code, "message": exc.description,
                "error": {"code": exc.code, "message": exc.description}}
    ctx = svc.caller_context(caller, q.source_ip, q.secure, q.context)
    session = caller.session
    # a revoked session may still ask who it is (STS API Reference, GetCallerIdentity)
    if session is not None and session.revoked and q.action.lower() != NO_PERMISSION_ACTION:
        reason, decision_json = "session revoked", {"response": "ExplicitlyDenied",
                                                    "blockedBy": ["revokedSessions"]}
        allowed = False
    else:
        d = evaluate(Request.make(caller.arn, q.action, q.resource, None, ctx),
                     svc.policy_set(session))
        allowed, decision_json = d.allowed, d.to_json()
        reason = ("allowed by " + ", ".join(m.policy_id for m in d.matched if m.effect == "Allow")
                  if allowed else d.response + (f" by {', '.join(d.blocked_by)}"
                                               if d.blocked_by else ""))
    out: dict[str, Any] = {"decision": "Allow" if allowed else "Deny", "principal": caller.arn,
                           "reason": reason, "evaluation": decision_json}
    if not allowed:
        message = {"allowed": False, "explicitDeny": decision_json.get("response") ==
                   "ExplicitlyDenied", "matchedStatements": decision_json.get("matched", []),
                   "failures": decision_json.get("blockedBy", []),
                   "context": {"principal": {"id": caller.session.user_id if caller.session
                                             else caller.access_key_id, "arn": caller.arn},
                               "action": q.action, "resource": q.resource,
                               "conditions": {k: v for k, v in ctx.items()}}}
        out["encodedAuthorizationMessage"] = encode_message(svc.secret, message)
        svc.auditor.emit("Decide", info, user=caller.arn, error_code="AccessDenied",
                         error_message=f"{q.action} on {q.resource}: {reason}",
                         additional={"action": q.action, "resource": q.resource,
                                     "resourceServer": client_id})
    return out
