"""The ``policy simulate`` input format: one request and the policies that apply to it.

``{"request": {"principal", "action", "resource": ARN | {"resource", "accountId"},
"context"}, "identityPolicies": [...], "resourcePolicy": {...}, "permissionBoundaries": [...],
"serviceControlPolicies": [...], "resourceControlPolicies": [...], "sessionPolicy": {...}}``.

A policy entry is a document, or ``{"name": ..., "policy": document}``.  SCP/RCP lists are
one level of the organization when they hold documents; a list whose items are lists, or
``{"policies": [...]}`` objects, gives one level per item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.iam.decision import PolicyType, Request
from idp.iam.errors import IamError, MalformedPolicyDocument
from idp.iam.evaluate import PolicySet
from idp.iam.policy import Policy, parse_policy
from idp.iam.validation import PolicyKind

KNOWN_KEYS = frozenset({"request", "identityPolicies", "resourcePolicy", "permissionBoundaries",
                        "serviceControlPolicies", "resourceControlPolicies", "sessionPolicy"})
_KINDS: dict[PolicyType, PolicyKind] = {
    "identity": "identity", "resource": "resource", "permissionsBoundary": "boundary",
    "session": "session", "scp": "scp", "rcp": "rcp",
}


class SimulationInputError(IamError):
    """The simulate file is not of the expected shape."""

    code = "ValidationError"


def _entry(raw: Any, ptype: PolicyType, default_id: str) -> Policy:
    if isinstance(raw, Mapping) and "Statement" not in raw and (
            "policy" in raw or "document" in raw):
        doc = raw.get("policy", raw.get("document"))
        pid = str(raw.get("name") or raw.get("policyId") or default_id)
    else:
        doc, pid = raw, default_id
    if not isinstance(doc, Mapping | str):
        raise SimulationInputError(f"`{default_id}` is not a policy document")
    try:
        return parse_policy(doc, _KINDS[ptype], pid)
    except MalformedPolicyDocument as exc:
        where = f"{pid}: {exc.pointer}" if exc.pointer else pid
        raise MalformedPolicyDocument(exc.description, where) from None


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _levels(items: list[Any], ptype: PolicyType, key: str) -> tuple[tuple[Policy, ...], ...]:
    if not items:
        return ()
    nested = [i for i in items if isinstance(i, list) or (isinstance(i, Mapping)
                                                           and "policies" in i)]
    if not nested:
        return (tuple(_entry(p, ptype, f"{key}[{i}]") for i, p in enumerate(items)),)
    if len(nested) != len(items):
        raise SimulationInputError(f"`{key}` mixes policies and levels")
    levels = []
    for li, level in enumerate(items):
        members = level if isinstance(level, list) else level["policies"]
        name = level.get("orgIdentifier", f"{key}[{li}]") if isinstance(level, Mapping) \
            else f"{key}[{li}]"
        levels.append(tuple(_entry(p, ptype, f"{name}[{i}]") for i, p in enumerate(members)))
    return tuple(levels)


def load_policies(data: Mapping[str, Any]) -> PolicySet:
    """The policy set of one simulate entry (``MalformedPolicyDocument`` for bad documents)."""
    resource = data.get("resourcePolicy")
    return PolicySet(
        identity=tuple(_entry(p, "identity", f"identityPolicies[{i}]")
                       for i, p in enumerate(_list(data, "identityPolicies"))),
        resource=None if resource is None else _entry(resource, "resource", "resourcePolicy"),
        boundaries=tuple(_entry(p, "permissionsBoundary", f"permissionBoundaries[{i}]")
                         for i, p in enumerate(_list(data, "permissionBoundaries"))),
        session=tuple(_entry(p, "session", f"sessionPolicy[{i}]")
                      for i, p in enumerate(_list(data, "sessionPolicy"))),
        scps=_levels(_list(data, "serviceControlPolicies"), "scp", "serviceControlPolicies"),
        rcps=_levels(_list(data, "resourceControlPolicies"), "rcp", "resourceControlPolicies"),
    )


def load_request(data: Mapping[str, Any]) -> Request:
    """The request of one simulate entry."""
    req = data.get("request")
    if not isinstance(req, Mapping):
        raise SimulationInputError("`request` must be an object")
    principal, action = req.get("principal"), req.get("action")
    if not isinstance(principal, str) or not principal:
        raise SimulationInputError("`request.principal` must be a string")
    if not isinstance(action, str) or ":" not in action:
        raise SimulationInputError("`request.action` must be a `service:Action` string")
    res = req.get("resource", "*")
    account = None
    if isinstance(res, Mapping):
        account = res.get("accountId")
        res = res.get("resource", "*")
    if not isinstance(res, str) or (account is not None and not isinstance(account, str)):
        raise SimulationInputError("`request.resource` must be an ARN or "
                                   "{\"resource\", \"accountId\"}")
    ctx = req.get("context", {})
    if not isinstance(ctx, Mapping):
        raise SimulationInputError("`request.context` must be an object")
    try:
        return Request.make(principal, action, res, account, ctx)
    except ValueError as exc:
        raise SimulationInputError(str(exc)) from None


def load_entry(data: Any) -> tuple[Request, PolicySet]:
    """Parse one simulate entry; raise :class:`IamError` subclasses with a clear message."""
    if not isinstance(data, Mapping):
        raise SimulationInputError("each simulation must be an object")
    unknown = sorted(k for k in data if k not in KNOWN_KEYS)
    if unknown:
        raise SimulationInputError(f"unknown key `{unknown[0]}`")
    return load_request(data), load_policies(data)
