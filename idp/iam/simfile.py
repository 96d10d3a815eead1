"""The ``policy simulate`` input format: one request and the policies that apply to it.

``{"request": {"principal", "action", "resource": ARN | {"resource", "accountId"},
"context"}, "identityPolicies": [...], "resourcePolicy": {...}, "trustPolicy": {...},
"permissionBoundaries": [...], "serviceControlPolicies": [...], "resourceControlPolicies":
[...], "sessionPolicy": {...} | [...]}`` (docs/iam.md, "The simulate file").

A policy entry is a document, or ``{"name": ..., "policy": document}``.  SCP/RCP lists are
one level of the organization when they hold documents; a list whose items are lists, or
``{"policies": [...]}`` objects, gives one level per item.  ``trustPolicy`` is the role's trust
policy (validated as one); ``resourcePolicy`` on a role ARN with an ``sts:AssumeRole*`` action
is read the same way by the engine.

Loading never stops at the first problem: :class:`EntryError` lists every one, each with the
path of the part of the entry it concerns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.iam.decision import PolicyType, Request
from idp.iam.errors import IamError
from idp.iam.evaluate import PolicySet
from idp.iam.policy import Policy, parse_policy
from idp.iam.validation import PolicyKind, problems

POLICY_KEYS = ("identityPolicies", "resourcePolicy", "trustPolicy", "permissionBoundaries",
               "sessionPolicy", "serviceControlPolicies", "resourceControlPolicies")
KNOWN_KEYS = ("request", *POLICY_KEYS)
REQUEST_KEYS = ("principal", "action", "resource", "context")
RESOURCE_KEYS = ("resource", "accountId")
ENTRY_KEYS = ("name", "policyId", "policy", "document")
_KINDS: dict[PolicyType, PolicyKind] = {
    "identity": "identity", "resource": "resource", "permissionsBoundary": "boundary",
    "session": "session", "scp": "scp", "rcp": "rcp",
}


@dataclass(frozen=True)
class Problem:
    """One problem of a simulate entry: an AWS-style code, a message and where it is."""

    code: str
    message: str
    path: str = ""

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "path": self.path}


class SimulationInputError(IamError):
    """The simulate file is not of the expected shape."""

    code = "ValidationError"


class EntryError(IamError):
    """An entry that cannot be evaluated; ``problems`` holds every problem found."""

    def __init__(self, found: list[Problem]) -> None:
        self.problems = found
        super().__init__(found[0].message, code=found[0].code)


def _valid(keys: tuple[str, ...]) -> str:
    return ", ".join(keys)


class _Loader:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def shape(self, message: str, path: str) -> None:
        self.found.append(Problem(SimulationInputError.code, message, path))

    def policy(self, raw: Any, kind: PolicyKind, path: str) -> Policy | None:
        pid = path
        if isinstance(raw, Mapping) and "Statement" not in raw and (
                "policy" in raw or "document" in raw):
            bad = sorted(k for k in raw if k not in ENTRY_KEYS)
            if bad:
                self.shape(f"unknown key `{bad[0]}`; valid keys: {_valid(ENTRY_KEYS)}",
                           f"{path}.{bad[0]}")
                return None
            doc = raw.get("policy", raw.get("document"))
            pid = str(raw.get("name") or raw.get("policyId") or path)
        else:
            doc = raw
        if not isinstance(doc, Mapping | str):
            self.shape(f"`{path}` is not a policy document", path)
            return None
        try:
            return parse_policy(doc, kind, pid)
        except IamError as exc:
            first: IamError = exc
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except ValueError:
                doc = None
        found: list[IamError] = [*problems(doc, kind)] or [first]  # never drop one silently
        for problem in found:
            pointer = getattr(problem, "pointer", "")
            where = f"{path}.{pointer}" if pointer else path
            self.found.append(Problem(problem.code, problem.description, where))
        return None

    def many(self, data: Mapping[str, Any], key: str, kind: PolicyKind) -> tuple[Policy, ...]:
        value = data.get(key)
        items = [] if value is None else value if isinstance(value, list) else [value]
        out = [self.policy(p, kind, f"{key}[{i}]") for i, p in enumerate(items)]
        return tuple(p for p in out if p is not None)

    def levels(self, data: Mapping[str, Any], key: str, kind: PolicyKind
               ) -> tuple[tuple[Policy, ...], ...]:
        value = data.get(key)
        items = [] if value is None else value if isinstance(value, list) else [value]
        if not items:
            return ()
        nested = [i for i in items if isinstance(i, list)
                  or (isinstance(i, Mapping) and "policies" in i)]
        if not nested:
            return (self.many(data, key, kind),)
        if len(nested) != len(items):
            self.shape(f"`{key}` mixes policies and levels", key)
            return ()
        out = []
        for li, level in enumerate(items):
            members = level if isinstance(level, list) else level["policies"]
            name = level.get("orgIdentifier", f"{key}[{li}]") if isinstance(level, Mapping) \
                else f"{key}[{li}]"
            if not isinstance(members, list):
                self.shape(f"`{key}[{li}].policies` must be a list", f"{key}[{li}].policies")
                continue
            got = [self.policy(p, kind, f"{key}[{li}][{i}]") for i, p in enumerate(members)]
            out.append(tuple(_rename(p, f"{name}[{i}]", f"{key}[{li}][{i}]")
                             for i, p in enumerate(got) if p is not None))
        return tuple(out)

    def request(self, data: Mapping[str, Any]) -> Request | None:
        req = data.get("request")
        if not isinstance(req, Mapping):
            self.shape("`request` must be an object", "request")
            return None
        bad = sorted(k for k in req if k not in REQUEST_KEYS)
        if bad:
            self.shape(f"unknown key `request.{bad[0]}`; valid keys: {_valid(REQUEST_KEYS)}",
                       f"request.{bad[0]}")
        principal, action = req.get("principal"), req.get("action")
        if not isinstance(principal, str) or not principal:
            self.shape("`request.principal` must be a string", "request.principal")
        if not isinstance(action, str) or ":" not in action:
            self.shape("`request.action` must be a `service:Action` string", "request.action")
        res = req.get("resource", "*")
        account = None
        if isinstance(res, Mapping):
            bad = sorted(k for k in res if k not in RESOURCE_KEYS)
            if bad:
                self.shape(f"unknown key `request.resource.{bad[0]}`; valid keys: "
                           f"{_valid(RESOURCE_KEYS)}", f"request.resource.{bad[0]}")
            account = res.get("accountId")
            res = res.get("resource", "*")
        if not isinstance(res, str) or (account is not None and not isinstance(account, str)):
            self.shape("`request.resource` must be an ARN or {\"resource\", \"accountId\"}",
                       "request.resource")
        ctx = req.get("context", {})
        if not isinstance(ctx, Mapping):
            self.shape("`request.context` must be an object", "request.context")
            return None
        if self.found:
            return None
        try:
            return Request.make(str(principal), str(action), str(res), account, ctx)
        except ValueError as exc:
            self.shape(str(exc), "request.context")
            return None


def _rename(p: Policy, pid: str, default: str) -> Policy:
    from dataclasses import replace

    return p if p.id != default else replace(p, id=pid)


def load_entry(data: Any) -> tuple[Request, PolicySet]:
    """Parse one simulate entry; :class:`EntryError` lists every problem found."""
    if not isinstance(data, Mapping):
        raise EntryError([Problem(SimulationInputError.code,
                                  "each simulation must be an object", "")])
    ld = _Loader()
    for key in sorted(k for k in data if k not in KNOWN_KEYS):
        ld.shape(f"unknown key `{key}`; valid keys: {_valid(KNOWN_KEYS)}", key)
    request = ld.request(data)
    if "resourcePolicy" in data and "trustPolicy" in data:
        ld.shape("give `resourcePolicy` or `trustPolicy`, not both", "trustPolicy")
    resource = None
    if data.get("trustPolicy") is not None:
        resource = ld.policy(data["trustPolicy"], "trust", "trustPolicy")
    elif data.get("resourcePolicy") is not None:
        resource = ld.policy(data["resourcePolicy"], "resource", "resourcePolicy")
    policies = PolicySet(
        identity=ld.many(data, "identityPolicies", "identity"),
        resource=resource,
        boundaries=ld.many(data, "permissionBoundaries", "boundary"),
        session=ld.many(data, "sessionPolicy", "session"),
        scps=ld.levels(data, "serviceControlPolicies", "scp"),
        rcps=ld.levels(data, "resourceControlPolicies", "rcp"),
    )
    if ld.found or request is None:
        raise EntryError(ld.found)
    return request, policies


def entry_problems(data: Any) -> list[Problem]:
    """Every problem of one simulate entry (empty when it can be evaluated)."""
    try:
        load_entry(data)
    except EntryError as exc:
        return exc.problems
    return []
