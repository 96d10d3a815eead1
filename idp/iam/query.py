"""The IAM Query API subset of ``POST /iam``: ``SimulateCustomPolicy``,
``SimulatePrincipalPolicy``, ``GetRole``, ``ListRoles`` (IAM API Reference, each action's
page; parameter and response shapes from botocore's ``iam/2010-05-08/service-2.json``).

:func:`handle_iam_query` takes the parsed form and returns ``(status, xml)``; it knows no web
framework.  SigV4 is checked by the caller; when a ``caller`` is given, the action itself is
authorized with this engine (``iam:GetRole`` on the role ARN…), as DESIGN.md asks.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from idp.iam import query_xml as x
from idp.iam.conditions import parse_date, parse_number
from idp.iam.decision import Decision, Request
from idp.iam.errors import IamError, MalformedPolicyDocument
from idp.iam.evaluate import PolicySet, evaluate
from idp.iam.model import IamModel, Role
from idp.iam.policy import Policy, parse_policy
from idp.iam.query_xml import QueryError
from idp.iam.validation import PolicyKind

log = logging.getLogger("idp.iam")

_DECISION = {"Allowed": "allowed", "ExplicitlyDenied": "explicitDeny",
             "ImplicitlyDenied": "implicitDeny"}
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


@dataclass(frozen=True)
class QueryCaller:
    """The authenticated caller of the API, as the STS session describes it."""

    arn: str
    context: Mapping[str, Any] = field(default_factory=dict)
    session_policies: Sequence[Any] = ()


Handler = Callable[[Mapping[str, str], IamModel], str]


def handle_iam_query(params: Mapping[str, str], model: IamModel,
                     caller: QueryCaller | str | None = None,
                     request_id: str | None = None) -> tuple[int, str]:
    """Run one IAM Query API request; never raises.  Errors use AWS's codes and statuses."""
    rid = request_id or str(uuid.uuid4())
    action = params.get("Action", "")
    try:
        if not action:
            raise QueryError("MissingAction", "Missing Action")
        handler = HANDLERS.get(action)
        if handler is None:
            raise QueryError("InvalidAction", f"Could not find operation {action} for version "
                             f"{params.get('Version', '2010-05-08')}")
        if caller is not None:
            _authorize(action, params, model, QueryCaller(caller) if isinstance(caller, str)
                       else caller)
        return 200, x.response(action, handler(params, model), rid)
    except IamError as exc:
        return exc.status, x.error(exc.code, exc.description, rid)
    except Exception:  # noqa: BLE001 - the API answers, it does not crash
        log.exception("iam %s: unexpected error", action[:64] or "request")
        return 500, x.error("ServiceFailure", "the request could not be processed", rid,
                            status=500)


def _authorize(action: str, params: Mapping[str, str], model: IamModel,
               caller: QueryCaller) -> None:
    acct = caller.arn.split(":")[4] if caller.arn.count(":") >= 5 else ""
    resource = "*"
    if action == "GetRole" and params.get("RoleName"):
        try:
            resource = model.role(params["RoleName"]).arn
        except IamError:
            resource = f"arn:aws:iam::{acct}:role/{params['RoleName']}"
    elif action == "SimulatePrincipalPolicy":
        resource = params.get("PolicySourceArn", "*")
    role_arn = _role_of(caller.arn)
    policies = PolicySet()
    if role_arn is not None and role_arn in model.roles:
        policies = model.policy_set(role_arn, list(caller.session_policies))
    decision = evaluate(Request.make(caller.arn, f"iam:{action}", resource, None,
                                     caller.context), policies)
    if not decision.allowed:
        raise QueryError("AccessDenied", f"User: {caller.arn} is not authorized to perform: "
                         f"iam:{action} on resource: {resource}", 403)


def _role_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/"):
        return arn
    return None


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise QueryError("MissingParameter", f"The request must contain the parameter {name}")
    return value


def _parse(text: str, kind: PolicyKind, pid: str) -> Policy:
    try:
        return parse_policy(text, kind, pid)
    except MalformedPolicyDocument as exc:
        raise QueryError("MalformedPolicyDocument", exc.description) from None


_CONVERT: dict[str, Callable[[str], bool]] = {
    "numeric": lambda v: parse_number(v) is not None,
    "boolean": lambda v: v.lower() in ("true", "false"),
    "date": lambda v: parse_date(v) is not None,
    "ip": lambda v: bool(re.match(r"^[0-9a-fA-F:.]+(/\d+)?$", v)),
}


def _context(params: Mapping[str, str]) -> dict[str, Any]:
    """``ContextEntries.member.N.ContextKeyName/ContextKeyValues.member.M/ContextKeyType``."""
    ctx: dict[str, Any] = {}
    for n in x.member_indexes(params, "ContextEntries"):
        base = f"ContextEntries.member.{n}"
        name = _required(params, f"{base}.ContextKeyName")
        ktype = params.get(f"{base}.ContextKeyType", "string")
        values = x.member_list(params, f"{base}.ContextKeyValues")
        check = _CONVERT.get(ktype.removesuffix("List"))
        if ktype.removesuffix("List") not in ("string", "binary", *_CONVERT):
            raise QueryError("InvalidParameterValue", f"Invalid ContextKeyType `{ktype}`")
        for v in values:
            if check is not None and not check(v):
                raise QueryError("InvalidParameterValue",
                                 f"Invalid value `{v}` for context key {name} of type {ktype}")
        ctx[name] = tuple(values) if ktype.endswith("List") or len(values) != 1 else values[0]
    return ctx


@dataclass
class _Simulation:
    policies: PolicySet
    sources: dict[str, tuple[str, str]]  # policy id -> (SourcePolicyId, SourcePolicyType)
    caller: str
    owner: str | None


def _inputs(params: Mapping[str, str], name: str, kind: PolicyKind,
            sources: dict[str, tuple[str, str]]) -> list[Policy]:
    out = []
    for i, text in enumerate(x.member_list(params, name), start=1):
        pid = f"{name}.{i}"
        out.append(_parse(text, kind, pid))
        sources[pid] = (pid, "none")
    return out


def _common(params: Mapping[str, str], identity: list[Policy], boundaries: list[Policy],
            sources: dict[str, tuple[str, str]], default_caller: str,
            scps: list[Policy] | None = None) -> _Simulation:
    extra_boundaries = _inputs(params, "PermissionsBoundaryPolicyInputList", "boundary", sources)
    levels = []
    for n in x.member_indexes(params, "OrderedOrganizationPolicyInputList"):
        levels.append(tuple(_inputs(
            params, f"OrderedOrganizationPolicyInputList.member.{n}.ServiceControlPolicyInputList",
            "scp", sources)))
    if not levels and scps:
        levels = [tuple(scps)]
    resource = None
    if "ResourcePolicy" in params:
        resource = _parse(params["ResourcePolicy"], "resource", "ResourcePolicy")
        sources["ResourcePolicy"] = ("ResourcePolicy", "resource")
        if "CallerArn" not in params and default_caller.endswith(":user/simulated"):
            raise QueryError("InvalidInput", "CallerArn is required when ResourcePolicy is "
                             "specified")
    owner = params.get("ResourceOwner")
    if owner is not None and owner.count(":") >= 4:
        owner = owner.split(":")[4]
    ps = PolicySet(identity=tuple(identity), resource=resource,
                   boundaries=tuple(extra_boundaries or boundaries), scps=tuple(levels))
    return _Simulation(ps, sources, params.get("CallerArn", default_caller), owner)


def _evaluations(params: Mapping[str, str], sim: _Simulation
                 ) -> tuple[list[dict[str, Any]], int, int]:
    """Each (action, resource) pair of this page, decided: results as AWS's JSON shapes them
    (``EvaluationResult``), plus the page's stop index and the number of pairs."""
    actions = x.member_list(params, "ActionNames")
    if not actions:
        raise QueryError("MissingParameter", "The request must contain the parameter ActionNames")
    resources = x.member_list(params, "ResourceArns") or ["*"]
    ctx = _context(params)
    pairs = [(a, r) for a in actions for r in resources]
    start, stop = x.page(params, len(pairs))
    results = []
    for action, resource in pairs[start:stop]:
        account = sim.owner if (sim.owner and resource.split(":")[4:5] in ([""], [])) else None
        decision = evaluate(Request.make(sim.caller, action, resource, account, ctx),
                            sim.policies)
        results.append(_result(action, resource, decision, sim))
    return results, stop, len(pairs)


def _simulate(params: Mapping[str, str], sim: _Simulation) -> str:
    results, stop, total = _evaluations(params, sim)
    return x.members("EvaluationResults", (_result_xml(r) for r in results)) \
        + x.marker(stop, total)


def _result(action: str, resource: str, d: Decision, sim: _Simulation) -> dict[str, Any]:
    """One ``EvaluationResult`` (IAM API Reference) as plain data."""
    stmts: list[dict[str, Any]] = []
    for m in d.matched:
        if (m.effect == "Deny") != (d.response == "ExplicitlyDenied"):
            continue
        sid, stype = sim.sources.get(m.policy_id, (m.policy_id, "none"))
        st: dict[str, Any] = {"SourcePolicyId": sid, "SourcePolicyType": stype}
        if m.start and m.end:
            st["StartPosition"] = {"Line": m.start[0], "Column": m.start[1]}
            st["EndPosition"] = {"Line": m.end[0], "Column": m.end[1]}
        stmts.append(st)
    out: dict[str, Any] = {"EvalActionName": action, "EvalResourceName": resource,
                           "EvalDecision": _DECISION[d.response], "MatchedStatements": stmts,
                           "MissingContextValues": list(d.missing_context)}
    if sim.policies.scps:
        out["OrganizationsDecisionDetail"] = {"AllowedByOrganizations":
                                              "scp" not in d.blocked_by}
    if sim.policies.boundaries:
        out["PermissionsBoundaryDecisionDetail"] = {
            "AllowedByPermissionsBoundary": "permissionsBoundary" not in d.blocked_by}
    if resource != "*":
        out["EvalDecisionDetails"] = {k: v for k, v in d.details
                                      if k in ("identity", "resource")} \
            if _cross(sim, resource) else {}
    return out


def _result_xml(r: Mapping[str, Any]) -> str:
    stmts = []
    for st in r["MatchedStatements"]:
        pos = ""
        if "StartPosition" in st:
            a, b = st["StartPosition"], st["EndPosition"]
            pos = (f"<StartPosition>{x.el('Line', a['Line'])}{x.el('Column', a['Column'])}"
                   f"</StartPosition><EndPosition>{x.el('Line', b['Line'])}"
                   f"{x.el('Column', b['Column'])}</EndPosition>")
        stmts.append(x.el("SourcePolicyId", st["SourcePolicyId"])
                     + x.el("SourcePolicyType", st["SourcePolicyType"]) + pos)
    out = (x.el("EvalActionName", r["EvalActionName"])
           + x.el("EvalResourceName", r["EvalResourceName"])
           + x.el("EvalDecision", r["EvalDecision"]) + x.members("MatchedStatements", stmts)
           + x.members("MissingContextValues", (escape(k) for k in r["MissingContextValues"])))
    if "OrganizationsDecisionDetail" in r:
        ok = r["OrganizationsDecisionDetail"]["AllowedByOrganizations"]
        out += (f"<OrganizationsDecisionDetail>{x.el('AllowedByOrganizations', ok)}"
                "</OrganizationsDecisionDetail>")
    if "PermissionsBoundaryDecisionDetail" in r:
        ok = r["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"]
        out += (f"<PermissionsBoundaryDecisionDetail>{x.el('AllowedByPermissionsBoundary', ok)}"
                "</PermissionsBoundaryDecisionDetail>")
    if "EvalDecisionDetails" in r:
        out += x.entries("EvalDecisionDetails", r["EvalDecisionDetails"])
    return out


def _cross(sim: _Simulation, resource: str) -> bool:
    caller_acct = sim.caller.split(":")[4] if sim.caller.count(":") >= 5 else None
    res_acct = (resource.split(":")[4] if resource.count(":") >= 5 else "") or sim.owner
    return bool(res_acct and caller_acct and res_acct != caller_acct)


def simulate_custom_policy(params: Mapping[str, str], model: IamModel) -> str:
    """``SimulateCustomPolicy``: PolicyInputList (required), boundaries, SCP levels, resource
    policy, CallerArn, ResourceOwner, ContextEntries, ActionNames, ResourceArns."""
    return _simulate(params, _custom_simulation(params, model))


def simulate_custom_policy_json(params: Mapping[str, str], model: IamModel) -> dict[str, Any]:
    """``SimulateCustomPolicy`` answered as the AWS CLI prints it (``EvaluationResults``,
    ``IsTruncated``, ``Marker``): the same parameters and decisions as :func:`handle_iam_query`.
    Raises :class:`QueryError` for the errors ``/iam`` would answer."""
    results, stop, total = _evaluations(params, _custom_simulation(params, model))
    out: dict[str, Any] = {"EvaluationResults": results, "IsTruncated": stop < total}
    if stop < total:
        out["Marker"] = base64.urlsafe_b64encode(str(stop).encode()).decode()
    return out


def _custom_simulation(params: Mapping[str, str], model: IamModel) -> _Simulation:
    sources: dict[str, tuple[str, str]] = {}
    if not x.member_list(params, "PolicyInputList"):
        raise QueryError("MissingParameter",
                         "The request must contain the parameter PolicyInputList")
    identity = _inputs(params, "PolicyInputList", "identity", sources)
    acct = next(iter(model.accounts), "123456789012")
    owner = params.get("ResourceOwner", "")
    if owner:
        acct = owner.split(":")[4] if owner.count(":") >= 4 else owner
    return _common(params, identity, [], sources, f"arn:aws:iam::{acct}:user/simulated")


def simulate_principal_policy(params: Mapping[str, str], model: IamModel) -> str:
    """``SimulatePrincipalPolicy`` for a role of the model (its inline and managed policies,
    its permissions boundary and its account's SCPs, plus PolicyInputList)."""
    arn = _required(params, "PolicySourceArn")
    role = model.roles.get(arn)
    if role is None:
        raise QueryError("NoSuchEntity", f"The role with ARN {arn} cannot be found.", 404)
    sources: dict[str, tuple[str, str]] = {}
    excluded = set(x.member_list(params, "PolicyExclusionList"))
    identity = []
    for p in role.inline_policies:
        identity.append(p)
        sources[p.id] = (p.id, "role")
    for mp in role.managed_policies:
        if mp.arn not in excluded:
            identity.append(mp.policy)
            sources[mp.policy.id] = (mp.name, "user-managed")
    boundaries = []
    if role.permissions_boundary is not None:
        boundaries.append(role.permissions_boundary.policy)
        sources[role.permissions_boundary.policy.id] = (role.permissions_boundary.name,
                                                        "user-managed")
    identity += _inputs(params, "PolicyInputList", "identity", sources)
    account = model.accounts.get(role.account)
    sim = _common(params, identity, boundaries, sources, role.arn,
                  list(account.scps) if account else None)
    return _simulate(params, sim)


def _role_xml(role: Role, full: bool) -> str:
    out = (x.el("Path", role.path) + x.el("RoleName", role.name) + x.el("RoleId", role.role_id)
           + x.el("Arn", role.arn) + x.el("CreateDate", role.create_date)
           + x.el("AssumeRolePolicyDocument", x.policy_document(role.trust_policy.document)))
    if role.description:
        out += x.el("Description", role.description)
    out += x.el("MaxSessionDuration", role.max_session_duration)
    if full and role.permissions_boundary is not None:
        out += ("<PermissionsBoundary>"
                + x.el("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
                + x.el("PermissionsBoundaryArn", role.permissions_boundary.arn)
                + "</PermissionsBoundary>")
    if full and role.tags:
        out += x.members("Tags", (x.el("Key", k) + x.el("Value", v)
                                  for k, v in role.tags.items()))
    if full:
        out += "<RoleLastUsed/>"
    return out


def get_role(params: Mapping[str, str], model: IamModel) -> str:
    """``GetRole``: the role by name (``NoSuchEntity`` 404 when unknown)."""
    name = _required(params, "RoleName")
    if not _ROLE_NAME.match(name):
        raise QueryError("ValidationError", "1 validation error detected: Value "
                         f"'{name}' at 'roleName' failed to satisfy constraint: Member must "
                         r"satisfy regular expression pattern: [\w+=,.@-]+")
    try:
        role = model.role(name)
    except IamError as exc:
        raise QueryError("NoSuchEntity", exc.description, 404) from None
    return f"<Role>{_role_xml(role, True)}</Role>"


def list_roles(params: Mapping[str, str], model: IamModel) -> str:
    """``ListRoles`` with ``PathPrefix``, ``Marker`` and ``MaxItems``."""
    prefix = params.get("PathPrefix", "/")
    if not prefix.startswith("/"):
        raise QueryError("ValidationError", "1 validation error detected: Value "
                         f"'{prefix}' at 'pathPrefix' failed to satisfy constraint: Member must "
                         r"satisfy regular expression pattern: \u002F[\u0021-\u007F]*")
    roles = model.sorted_roles(prefix)
    start, stop = x.page(params, len(roles))
    return (x.members("Roles", (_role_xml(r, False) for r in roles[start:stop]))
            + x.marker(stop, len(roles)))


HANDLERS: dict[str, Handler] = {
    "SimulateCustomPolicy": simulate_custom_policy,
    "SimulatePrincipalPolicy": simulate_principal_policy,
    "GetRole": get_role,
    "ListRoles": list_roles,
}
