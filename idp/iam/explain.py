"""A decision in plain words (``idp policy simulate --explain``).

Each sentence names a policy type, the statements that matched or the reason none did, and
what the policy would allow instead, so the reader knows which document to change: e.g.
``denied: no identity policy allows s3:PutObject on arn:aws:s3:::b/k`` and ``the session
policy allows only s3:Get*``.  The evaluation order is the IAM User Guide's "Policy evaluation
logic".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from idp.iam.decision import Decision, MatchedStatement, PolicyType, Request
from idp.iam.evaluate import ASSUME_ACTIONS, NO_PERMISSION_NOTE, PolicySet
from idp.iam.policy import Policy
from idp.iam.validation import statements_of

NAMES: dict[PolicyType, str] = {
    "identity": "identity policy", "resource": "resource policy",
    "permissionsBoundary": "permissions boundary", "session": "session policy",
    "scp": "service control policy (SCP)", "rcp": "resource control policy (RCP)",
}


def _name(ptype: PolicyType, request: Request) -> str:
    if ptype == "resource" and request.action.lower() in ASSUME_ACTIONS:
        return "trust policy"
    return NAMES[ptype]


def _statement(m: MatchedStatement) -> str:
    sid = f" `{m.sid}`" if m.sid else ""
    return f"{m.policy_id} statement {m.index}{sid}"


def _list(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(items) if items else "nothing"


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or ()]


def allowed_actions(policies: Sequence[Policy]) -> list[str]:
    """What the ``Allow`` statements of these policies cover, as written."""
    out: list[str] = []
    for p in policies:
        for _, st in statements_of(p.document):
            if st.get("Effect") != "Allow":
                continue
            if "NotAction" in st:
                out.append("every action except " + _list(_as_list(st["NotAction"])))
            else:
                out.extend(_as_list(st.get("Action")))
    return list(dict.fromkeys(out))


def _policies(ps: PolicySet, ptype: PolicyType) -> list[Policy]:
    if ptype == "identity":
        return list(ps.identity)
    if ptype == "resource":
        return [ps.resource] if ps.resource is not None else []
    if ptype == "permissionsBoundary":
        return list(ps.boundaries)
    if ptype == "session":
        return list(ps.session)
    levels = ps.scps if ptype == "scp" else ps.rcps
    return [p for level in levels for p in level]


def explain(request: Request, ps: PolicySet, d: Decision) -> list[str]:
    """Sentences explaining ``d`` for ``request`` under ``ps``, the verdict first."""
    what = f"{request.action} on {request.resource}"
    lines: list[str] = []
    if NO_PERMISSION_NOTE in d.diagnostics:
        return [f"allowed: {NO_PERMISSION_NOTE}; no policy is consulted"]
    if d.response == "ExplicitlyDenied":
        for m in d.matched:
            lines.append(f"denied: the {_name(m.policy_type, request)} {_statement(m)} "
                         f"explicitly denies {what}; an explicit deny overrides every allow")
    elif d.response == "Allowed":
        lines.append(f"allowed: {what}")
        lines.extend(_allowing(d, request))
        if len(lines) == 1:
            lines.append("the account root user may do anything no policy denies")
    else:
        for ptype in d.blocked_by:
            lines.append(_implicit(ptype, request, ps, what))
        if not d.blocked_by:
            lines.append(f"denied: no policy allows {what}")
        lines.extend(line + " (not enough on its own)" for line in _allowing(d, request))
    for key in d.missing_context:
        lines.append(f"the request has no value for `{key}`, which a condition reads")
    lines.extend(d.diagnostics)
    return lines


def _allowing(d: Decision, request: Request) -> list[str]:
    """Per policy type, the ``Allow`` statements that matched."""
    by_type: dict[PolicyType, list[MatchedStatement]] = {}
    for m in d.matched:
        if m.effect == "Allow":
            by_type.setdefault(m.policy_type, []).append(m)
    return [f"the {_name(ptype, request)} allows it: {_list(_statement(m) for m in ms)}"
            for ptype, ms in by_type.items()]


def _near_misses(policies: Sequence[Policy], action: str) -> list[str]:
    """``Allow`` statements whose action matches but whose resource or condition did not."""
    return [f"{p.id} statement {st.index}" + (f" `{st.sid}`" if st.sid else "")
            for p in policies for st in p.matching(action.lower()) if st.allow]


def _implicit(ptype: PolicyType, request: Request, ps: PolicySet, what: str) -> str:
    name = _name(ptype, request)
    present = _policies(ps, ptype)
    near = _near_misses(present, request.action)
    if near and ptype != "scp":
        return (f"denied: the {name} has statements for {request.action} ({_list(near)}) "
                f"but their resource, principal or condition does not match "
                f"{request.resource}")
    if ptype == "resource":
        if not present:
            return f"denied: no resource policy allows {what} (the request needs one: " \
                   "it crosses accounts or assumes a role)"
        return (f"denied: the {name} does not allow {request.principal} to do {what} "
                f"(it allows {_list(allowed_actions(present))} to the principals it names)")
    if ptype == "identity" and not present:
        return f"denied: no identity policy allows {what} (there is none)"
    if ptype == "identity":
        return (f"denied: no identity policy allows {what}; together they allow "
                f"{_list(allowed_actions(present))}")
    if ptype == "scp":
        return (f"denied: an SCP level has no statement allowing {what}; every level of the "
                f"organization must allow (the SCPs allow {_list(allowed_actions(present))})")
    return f"denied: the {name} allows only {_list(allowed_actions(present))}, not {what}"
