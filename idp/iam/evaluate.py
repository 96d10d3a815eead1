"""The policy evaluation engine.

Follows the IAM User Guide, "Policy evaluation logic" and its sub-pages:

1. "How AWS enforcement code logic evaluates requests": an explicit ``Deny`` in any applicable
   policy wins; then RCPs, then SCPs must each contain an applicable ``Allow`` (at every level
   of the organization), then resource-based policies, identity-based policies, permissions
   boundaries and session policies.
2. "Policy evaluation for requests within a single account": a resource-based policy that names
   the IAM user ARN or the role *session* ARN grants on its own; one that names the role ARN
   grants but stays limited by the permissions boundary and the session policy ("Permissions
   boundaries for IAM entities", "Session policies": "the resulting session's permissions are
   the intersection of the session policies and the resource-based policies plus the
   intersection of the session policies and identity-based policies"); one that names the
   account delegates to the account's identity-based policies.
3. "Cross-account policy evaluation logic": the requester's policies (identity, boundary,
   session, SCP) *and* the resource-based policy must both allow.
4. "Permissions boundaries": a ``Deny`` with ``NotPrincipal`` in a resource-based policy always
   denies a principal that has a permissions boundary.

Deny on doubt: an error while matching an ``Allow`` statement drops that statement, an error
while matching a ``Deny`` statement makes it apply; both are reported in ``diagnostics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from idp.iam.arn import account_of
from idp.iam.decision import Decision, MatchedStatement, PolicyType, Request
from idp.iam.policy import Policy, Statement, parse_policy
from idp.iam.principals import Caller, Category, classify
from idp.iam.validation import PolicyKind
from idp.iam.variables import Context

PolicyInput = Policy | str | Mapping[str, Any]
_CACHE_MAX = 200_000
_KIND: dict[PolicyType, PolicyKind] = {
    "identity": "identity", "resource": "resource", "permissionsBoundary": "boundary",
    "session": "session", "scp": "scp", "rcp": "rcp",
}


def _policy(p: PolicyInput, ptype: PolicyType, default_id: str) -> Policy:
    if isinstance(p, Policy):
        return p
    return parse_policy(p, _KIND[ptype], default_id)


@dataclass(eq=False)
class PolicySet:
    """Every policy that applies to a request, compiled; decisions are cached per set.

    ``scps``/``rcps`` are levels of the organization (root, OUs, account): each level needs an
    ``Allow``; several policies at one level are a union.
    """

    identity: tuple[Policy, ...] = ()
    resource: Policy | None = None
    boundaries: tuple[Policy, ...] = ()
    session: tuple[Policy, ...] = ()
    scps: tuple[tuple[Policy, ...], ...] = ()
    rcps: tuple[tuple[Policy, ...], ...] = ()
    cache: bool = True
    _keys: tuple[str, ...] = field(default=(), repr=False)
    _cache: dict[Any, Decision] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        keys = {"aws:principalarn"}
        for p in self.all_policies():
            keys |= p.context_keys
        self._keys = tuple(sorted(keys))

    def all_policies(self) -> Iterable[Policy]:
        yield from self.identity
        if self.resource is not None:
            yield self.resource
        yield from self.boundaries
        yield from self.session
        for level in (*self.scps, *self.rcps):
            yield from level

    @classmethod
    def build(cls, identity: Sequence[PolicyInput] = (), resource: PolicyInput | None = None,
              boundaries: Sequence[PolicyInput] = (), session: Sequence[PolicyInput] = (),
              scps: Sequence[PolicyInput | Sequence[PolicyInput]] = (),
              rcps: Sequence[PolicyInput | Sequence[PolicyInput]] = (),
              cache: bool = True) -> PolicySet:
        """Parse and compile documents (``MalformedPolicyDocument`` on the first bad one)."""

        def levels(items: Sequence[Any], ptype: PolicyType) -> tuple[tuple[Policy, ...], ...]:
            if items and all(isinstance(i, list | tuple) for i in items):
                return tuple(tuple(_policy(p, ptype, f"{ptype}[{li}][{i}]")
                                   for i, p in enumerate(level)) for li, level in enumerate(items))
            if not items:
                return ()
            return (tuple(_policy(p, ptype, f"{ptype}[{i}]") for i, p in enumerate(items)),)

        return cls(
            identity=tuple(_policy(p, "identity", f"identity[{i}]")
                           for i, p in enumerate(identity)),
            resource=None if resource is None else _policy(resource, "resource", "resource"),
            boundaries=tuple(_policy(p, "permissionsBoundary", f"permissionsBoundary[{i}]")
                             for i, p in enumerate(boundaries)),
            session=tuple(_policy(p, "session", f"session[{i}]") for i, p in enumerate(session)),
            scps=levels(scps, "scp"), rcps=levels(rcps, "rcp"), cache=cache,
        )

    def evaluate(self, request: Request) -> Decision:
        """The decision for ``request`` (cached on the context values the policies read)."""
        if not self.cache:
            return _decide(self, request)
        ctx = request.context
        key = (request.principal, request.action.lower(), request.resource,
               request.resource_account, tuple(ctx.get(k) for k in self._keys))
        hit = self._cache.get(key)
        if hit is None:
            hit = _decide(self, request)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = hit
        return hit


def evaluate(request: Request, policies: PolicySet) -> Decision:
    """Decide a request; never raises: an internal error is an implicit deny that says why."""
    try:
        return policies.evaluate(request)
    except Exception as exc:  # noqa: BLE001 - deny on doubt (STYLE.md 6)
        return Decision("ImplicitlyDenied", diagnostics=(f"evaluation error: {exc}",))


@dataclass
class _Scan:
    """The outcome of matching one policy type."""

    allows: list[tuple[MatchedStatement, Category | None]] = field(default_factory=list)
    denies: list[MatchedStatement] = field(default_factory=list)


class _Evaluation:
    __slots__ = ("caller", "action", "resource", "ctx", "missing", "diags",
                 "has_boundary")

    def __init__(self, request: Request, caller: Caller, has_boundary: bool) -> None:
        self.caller = caller
        self.action = request.action.lower()
        self.resource = request.resource
        self.ctx: Context = request.context
        self.missing: set[str] = set()
        self.diags: list[str] = []
        self.has_boundary = has_boundary

    def scan(self, policies: Iterable[Policy], ptype: PolicyType, with_principal: bool) -> _Scan:
        out = _Scan()
        for policy in policies:
            for st in policy.matching(self.action):
                try:
                    hit = self._applies(st, with_principal)
                except Exception as exc:  # noqa: BLE001 - deny on doubt
                    self.diags.append(f"{policy.id} statement {st.index}: error `{exc}`")
                    hit = False if st.allow else "wildcard"
                if hit is False:
                    continue
                m = MatchedStatement(ptype, policy.id, st.index, st.sid, st.effect, st.start,
                                     st.end)
                if st.allow:
                    out.allows.append((m, hit if hit is not True else None))
                else:
                    out.denies.append(m)
        return out

    def _applies(self, st: Statement, with_principal: bool) -> bool | Category:
        if st.resources is not None:
            hit = False
            for pat in st.resources:
                m = pat.match(self.resource, self.ctx)
                if m is None:
                    self.diags.append(f"statement {st.index}: unresolved policy variable in "
                                      f"`{pat.text}`")
                    return False
                if m:
                    hit = True
                    break
            if hit == st.not_resource:
                return False
        category: bool | Category = True
        if with_principal and st.principal is not None:
            if st.not_principal:
                quirk = self.has_boundary and not st.allow
                if not quirk and st.principal.excludes(self.caller):
                    return False
                category = "wildcard"
            else:
                named = st.principal.match(self.caller)
                if named is None:
                    return False
                category = named
        for cond in st.conditions:
            ok = cond.check(self.ctx, self.missing)
            if ok is None:
                self.diags.append(f"statement {st.index}: unresolved policy variable in "
                                  f"condition `{cond.operator}` `{cond.key}`")
                return False
            if not ok:
                return False
        return category


def _any_level_missing(ev: _Evaluation, levels: tuple[tuple[Policy, ...], ...],
                       ptype: PolicyType, found: list[MatchedStatement],
                       denies: list[MatchedStatement]) -> bool:
    missing = False
    for level in levels:
        scan = ev.scan(level, ptype, with_principal=ptype == "rcp")
        denies.extend(scan.denies)
        found.extend(m for m, _ in scan.allows)
        if not scan.allows:
            missing = True
    return missing


def _decide(ps: PolicySet, request: Request) -> Decision:
    try:
        caller = classify(request.principal, request.context)
    except ValueError as exc:
        return Decision("ImplicitlyDenied", diagnostics=(str(exc),))
    ev = _Evaluation(request, caller, bool(ps.boundaries))
    aws = caller.is_aws
    applies_scp = aws and bool(ps.scps)
    applies_rcp = caller.kind != "service" and bool(ps.rcps)
    identity = ev.scan(ps.identity, "identity", False) if aws and ps.identity else _Scan()
    resource = ev.scan((ps.resource,), "resource", True) if ps.resource else _Scan()
    boundary = ev.scan(ps.boundaries, "permissionsBoundary", False) \
        if aws and ps.boundaries else _Scan()
    session = ev.scan(ps.session, "session", False) if aws and ps.session else _Scan()
    denies = identity.denies + resource.denies + boundary.denies + session.denies
    scp_allows: list[MatchedStatement] = []
    rcp_allows: list[MatchedStatement] = []
    scp_missing = applies_scp and _any_level_missing(ev, ps.scps, "scp", scp_allows, denies)
    rcp_missing = applies_rcp and _any_level_missing(ev, ps.rcps, "rcp", rcp_allows, denies)
    details: list[tuple[PolicyType, str]] = []
    for ptype, scan, present in (("identity", identity, bool(ps.identity)),
                                 ("resource", resource, ps.resource is not None),
                                 ("permissionsBoundary", boundary, bool(ps.boundaries)),
                                 ("session", session, bool(ps.session))):
        if present:
            details.append((ptype, "explicitDeny" if scan.denies
                            else "allowed" if scan.allows else "implicitDeny"))  # type: ignore[arg-type]
    missing = tuple(sorted(ev.missing))
    diags = tuple(ev.diags)
    if denies:
        blocked = tuple(dict.fromkeys(m.policy_type for m in denies))
        return Decision("ExplicitlyDenied", tuple(denies), blocked, missing, diags,
                        tuple(details))
    allows = [m for m, _ in identity.allows + resource.allows + boundary.allows + session.allows]
    allows += scp_allows + rcp_allows

    def deny(*blocked: PolicyType) -> Decision:
        return Decision("ImplicitlyDenied", tuple(allows), blocked, missing, diags, tuple(details))

    if rcp_missing:
        return deny("rcp")
    if scp_missing:
        return deny("scp")
    granted = _granted(ps, request, caller, identity, resource, boundary, session)
    if isinstance(granted, tuple):
        return deny(*granted)
    return Decision("Allowed", tuple(allows), (), missing, diags, tuple(details))


def _granted(ps: PolicySet, request: Request, caller: Caller, identity: _Scan, resource: _Scan,
             boundary: _Scan, session: _Scan) -> bool | tuple[PolicyType, ...]:
    """``True`` when allowed, else the policy types that lacked an ``Allow``."""
    categories = {c for _, c in resource.allows}
    if not caller.is_aws:  # federated, service or anonymous: only the resource policy grants
        return True if resource.allows else ("resource",)
    boundary_ok = not ps.boundaries or bool(boundary.allows)
    session_ok = not ps.session or bool(session.allows)
    identity_ok = caller.kind == "root" or bool(identity.allows)
    res_account = (request.resource_account or account_of(request.resource)
                   or caller.account)
    requester: list[PolicyType] = []
    if not identity_ok:
        requester.append("identity")
    if not boundary_ok:
        requester.append("permissionsBoundary")
    if not session_ok:
        requester.append("session")
    if res_account != caller.account:  # cross-account: both sides must allow
        if not resource.allows:
            return (*requester, "resource")
        return tuple(requester) or True
    if "session" in categories:
        return True
    if "entity" in categories:
        if caller.kind in ("user", "root"):
            return True
        if boundary_ok and session_ok:
            return True
    if "wildcard" in categories and boundary_ok and session_ok:
        return True
    if not requester:
        return True
    if resource.allows or ps.resource is None:
        return tuple(requester)
    return (*requester, "resource") if not identity_ok else tuple(requester)
