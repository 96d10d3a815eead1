"""Requests and decisions of the policy engine (plain data, JSON-friendly)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from idp.iam.policy import Position
from idp.iam.variables import ContextValue

Response = Literal["Allowed", "ExplicitlyDenied", "ImplicitlyDenied"]
# Policy types, as named in results (``blockedBy``) and in the simulate file format.
PolicyType = Literal["identity", "resource", "permissionsBoundary", "session", "scp", "rcp"]


def context_value(value: Any) -> ContextValue | None:
    """One request-context value as the engine holds it: a string, or a tuple for a set."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list | tuple | set | frozenset):
        out = []
        for v in value:
            cv = context_value(v)
            if isinstance(cv, str):
                out.append(cv)
        return tuple(out)
    if isinstance(value, str):
        return value
    raise ValueError(f"context value of type `{type(value).__name__}` is not supported")


def normalize_context(ctx: Mapping[str, Any]) -> dict[str, ContextValue]:
    """Lower-case keys (condition keys are case-insensitive), values as strings or tuples."""
    out: dict[str, ContextValue] = {}
    for key, value in ctx.items():
        cv = context_value(value)
        if cv is not None:
            out[str(key).lower()] = cv
    return out


@dataclass(frozen=True)
class Request:
    """One authorization question: may ``principal`` do ``action`` on ``resource``?

    ``resource_account`` defaults to the account in the resource ARN, or, for ARNs without one
    (S3 buckets), to the principal's account.
    """

    principal: str
    action: str
    resource: str = "*"
    resource_account: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ctx = self.context
        if not all(type(v) in (str, tuple) and k == k.lower() for k, v in ctx.items()):
            object.__setattr__(self, "context", normalize_context(ctx))

    @classmethod
    def make(cls, principal: str, action: str, resource: str = "*",
             resource_account: str | None = None,
             context: Mapping[str, Any] | None = None) -> Request:
        return cls(principal, action, resource, resource_account,
                   normalize_context(context or {}))


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    """A statement that took part in a decision."""

    policy_type: PolicyType
    policy_id: str
    index: int
    sid: str | None
    effect: str
    start: Position | None = None
    end: Position | None = None

    def to_json(self) -> dict[str, Any]:
        return {"policyType": self.policy_type, "policyId": self.policy_id, "sid": self.sid,
                "statementIndex": self.index, "effect": self.effect}


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with the statements that decided it and, for a deny, what blocked it."""

    response: Response
    matched: tuple[MatchedStatement, ...] = ()
    blocked_by: tuple[PolicyType, ...] = ()
    missing_context: tuple[str, ...] = ()
    diagnostics: tuple[str, ...] = ()
    details: tuple[tuple[PolicyType, str], ...] = ()  # per policy type: allowed/…Deny

    @property
    def allowed(self) -> bool:
        return self.response == "Allowed"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "response": self.response,
            "blockedBy": list(self.blocked_by),
            "matched": [m.to_json() for m in self.matched],
        }
        if self.missing_context:
            out["missingContextValues"] = list(self.missing_context)
        if self.diagnostics:
            out["diagnostics"] = list(self.diagnostics)
        return out
