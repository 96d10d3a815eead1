"""The evaluation corpus: cases written from the AWS IAM User Guide, as plain data.

Every case is one entry of the ``idp policy simulate`` file format plus ``id`` (the rule or
attack it covers), ``expect`` (the decision AWS documents), optionally ``blockedBy`` and
``source`` (the documentation page the case comes from).  ``ALL_CASES`` gathers every module.
"""

from __future__ import annotations

from typing import Any

ACCT = "111122223333"
OTHER = "444455556666"
USER = f"arn:aws:iam::{ACCT}:user/carlos"
ROLE = f"arn:aws:iam::{ACCT}:role/Dev"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/Dev/alice"
ROOT = f"arn:aws:iam::{ACCT}:root"
OTHER_SESSION = f"arn:aws:sts::{OTHER}:assumed-role/Ext/bob"
OTHER_ROLE = f"arn:aws:iam::{OTHER}:role/Ext"
OTHER_ROOT = f"arn:aws:iam::{OTHER}:root"
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"
OBJECT = f"{BUCKET}/report.csv"
SAML = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
OIDC = f"arn:aws:iam::{ACCT}:oidc-provider/127.0.0.1:8000"

Case = dict[str, Any]


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> dict[str, Any]:
    out: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        out = {"Version": version, **out}
    return out


def _stmt(effect: str, action: Any, resource: Any, **kw: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": effect}
    for key in ("Sid", "Principal", "NotPrincipal"):
        if key in kw:
            st[key] = kw.pop(key)
    if "NotAction" in kw:
        st["NotAction"] = kw.pop("NotAction")
    elif action is not None:
        st["Action"] = action
    if "NotResource" in kw:
        st["NotResource"] = kw.pop("NotResource")
    elif resource is not None:
        st["Resource"] = resource
    if "Condition" in kw:
        st["Condition"] = kw.pop("Condition")
    assert not kw, kw
    return st


def allow(action: Any = "*", resource: Any = "*", **kw: Any) -> dict[str, Any]:
    return _stmt("Allow", action, resource, **kw)


def deny(action: Any = "*", resource: Any = "*", **kw: Any) -> dict[str, Any]:
    return _stmt("Deny", action, resource, **kw)


def case(cid: str, expect: str, *, source: str, principal: str = SESSION,
         action: str = "s3:GetObject", resource: str = OBJECT, account: str | None = None,
         context: dict[str, Any] | None = None, identity: list[Any] | None = None,
         resource_policy: dict[str, Any] | None = None, boundaries: list[Any] | None = None,
         scps: list[Any] | None = None, rcps: list[Any] | None = None,
         session: Any = None, blocked: list[str] | None = None,
         trust: dict[str, Any] | None = None) -> Case:
    res: Any = resource if account is None else {"resource": resource, "accountId": account}
    out: Case = {"id": cid, "source": source, "expect": expect,
                 "request": {"principal": principal, "action": action, "resource": res,
                             "context": context or {}}}
    if identity is not None:
        out["identityPolicies"] = identity
    if resource_policy is not None:
        out["resourcePolicy"] = resource_policy
    if trust is not None:
        out["trustPolicy"] = trust
    if boundaries is not None:
        out["permissionBoundaries"] = boundaries
    if scps is not None:
        out["serviceControlPolicies"] = scps
    if rcps is not None:
        out["resourceControlPolicies"] = rcps
    if session is not None:
        out["sessionPolicy"] = session
    if blocked is not None:
        out["blockedBy"] = blocked
    return out


def simulate_entry(c: Case) -> dict[str, Any]:
    """The case without its test-only keys: a valid ``policy simulate`` entry."""
    return {k: v for k, v in c.items() if k not in ("id", "source", "expect", "blockedBy")}


def all_cases() -> list[Case]:
    from tests.iam.corpus import conditions, evaluation, matching, multivalued, rules, variables

    cases: list[Case] = []
    for module in (evaluation, matching, conditions, multivalued, variables, rules):
        cases.extend(module.CASES)
    return cases
