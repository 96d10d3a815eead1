"""Deny on doubt, explanations and caching (STYLE.md 6; DESIGN.md "Policy evaluation denies by
default")."""

from __future__ import annotations

from typing import Any

import pytest

from idp.iam import PolicySet, Request, evaluate
from idp.iam.conditions import Condition

SESSION = "arn:aws:sts::111122223333:assumed-role/Dev/alice"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@pytest.mark.parametrize("principal", [
    pytest.param("not an arn", id="garbage-principal"),
    pytest.param("arn:aws:iam::notanaccount:user/x", id="bad-account"),
    pytest.param("arn:aws:iam::111122223333:group/devs", id="group-cannot-call"),
])
def test_unrecognised_principal_is_denied_with_reason(principal: str) -> None:
    ps = PolicySet.build(identity=[doc(ALLOW_ALL)])
    d = evaluate(Request.make(principal, "s3:GetObject"), ps)
    assert d.response == "ImplicitlyDenied"
    assert d.diagnostics and principal in d.diagnostics[0]


def _boom(self: Condition, ctx: Any, missing: set[str]) -> bool:
    raise RuntimeError("boom")


@pytest.mark.parametrize(("effect", "expect"), [
    pytest.param("Deny", "ExplicitlyDenied", id="error-in-deny-statement-applies-it"),
    pytest.param("Allow", "ImplicitlyDenied", id="error-in-allow-statement-drops-it"),
])
def test_statement_errors_deny(monkeypatch: pytest.MonkeyPatch, effect: str, expect: str) -> None:
    monkeypatch.setattr(Condition, "check", _boom)
    st = {"Effect": effect, "Action": "s3:*", "Resource": "*",
          "Condition": {"StringEquals": {"aws:username": "x"}}}
    identity = [doc(st)] if effect == "Allow" else [doc(ALLOW_ALL, st)]
    d = evaluate(Request.make(SESSION, "s3:GetObject"), PolicySet.build(identity=identity))
    assert d.response == expect
    assert any("boom" in msg for msg in d.diagnostics)


def test_internal_error_is_implicit_deny(monkeypatch: pytest.MonkeyPatch) -> None:
    ps = PolicySet.build(identity=[doc(ALLOW_ALL)])

    def broken(self: PolicySet, request: Request) -> Any:
        raise KeyError("broken")

    monkeypatch.setattr(PolicySet, "evaluate", broken)
    d = evaluate(Request.make(SESSION, "s3:GetObject"), ps)
    assert d.response == "ImplicitlyDenied" and "broken" in d.diagnostics[0]


def test_unresolved_variable_is_explained() -> None:
    ps = PolicySet.build(identity=[doc({"Effect": "Allow", "Action": "s3:*",
                                        "Resource": "arn:aws:s3:::b/${aws:username}/*"})])
    d = evaluate(Request.make(SESSION, "s3:GetObject", "arn:aws:s3:::b/alice/x"), ps)
    assert d.response == "ImplicitlyDenied"
    assert "unresolved policy variable" in d.diagnostics[0]


def test_explanation_lists_deciding_statements() -> None:
    ps = PolicySet.build(
        identity=[doc({"Sid": "Read", **ALLOW_ALL}),
                  doc({"Sid": "NoIam", "Effect": "Deny", "Action": "iam:*", "Resource": "*"})],
        boundaries=[doc({"Sid": "Cap", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})])
    allowed = evaluate(Request.make(SESSION, "s3:GetObject"), ps)
    assert allowed.to_json() == {"response": "Allowed", "blockedBy": [], "matched": [
        {"policyType": "identity", "policyId": "identity[0]", "sid": "Read", "statementIndex": 0,
         "effect": "Allow"},
        {"policyType": "permissionsBoundary", "policyId": "permissionsBoundary[0]", "sid": "Cap",
         "statementIndex": 0, "effect": "Allow"}]}
    denied = evaluate(Request.make(SESSION, "iam:CreateUser"), ps)
    assert denied.response == "ExplicitlyDenied" and denied.blocked_by == ("identity",)
    assert [(m.policy_id, m.sid) for m in denied.matched] == [("identity[1]", "NoIam")]
    capped = evaluate(Request.make(SESSION, "ec2:RunInstances"), ps)
    assert capped.blocked_by == ("permissionsBoundary",)


def test_missing_context_values_reported() -> None:
    ps = PolicySet.build(identity=[doc({**ALLOW_ALL, "Condition": {
        "StringEquals": {"aws:PrincipalTag/Team": "blue"}}})])
    d = evaluate(Request.make(SESSION, "s3:GetObject"), ps)
    assert d.missing_context == ("aws:PrincipalTag/Team",)


def test_cache_keys_on_referenced_context_only() -> None:
    ps = PolicySet.build(identity=[doc({**ALLOW_ALL, "Condition": {
        "StringEquals": {"aws:PrincipalTag/team": "blue"}}})])
    a = evaluate(Request.make(SESSION, "s3:GetObject", context={
        "aws:PrincipalTag/team": "blue", "aws:CurrentTime": "2025-01-01T00:00:00Z"}), ps)
    b = evaluate(Request.make(SESSION, "s3:GetObject", context={
        "aws:PrincipalTag/team": "blue", "aws:CurrentTime": "2025-01-02T00:00:00Z"}), ps)
    c = evaluate(Request.make(SESSION, "s3:GetObject", context={
        "aws:PrincipalTag/team": "red"}), ps)
    assert a is b  # unreferenced key: one cache entry
    assert a.allowed and not c.allowed
