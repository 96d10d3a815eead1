"""The policy evaluation engine.

Follows the IAM User Guide, "Policy evaluation logic" and its sub-pages:

1. "How AWS enforcement code logic evaluates requests": an explicit ``Deny`` in any applicable
   policy wins; then SCPs must contain an applicable ``Allow`` at every level of the
   organization, then resource-based policies, identity-based policies, permissions boundaries
   and session policies.  RCPs restrict only through ``Deny``: AWS Organizations User Guide,
   "Resource control policies (RCPs)": every root, OU and account has ``RCPFullAWSAccess``
   attached and it cannot be detached, so a level without an RCP of its own, or whose RCPs
   deny nothing that matches, does not block.
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
5. "Policy evaluation for requests within a single account": a role trust policy is a
   resource-based policy that must itself allow ``sts:AssumeRole*``, also within one account;
   when it names the account rather than the principal, the caller's identity policy must
   allow too.
6. STS API Reference, "GetCallerIdentity": "No permissions are required to perform this
   operation. If an administrator attaches a policy to your identity that explicitly denies
   access to the sts:GetCallerIdentity action, you can still perform this operation."
7. A resource policy whose ``Principal`` is ``"*"`` (or ``{"AWS": "*"}``) names the caller
   itself ("Principal": "All principals"): within one account it grants like the caller's own
   ARN — an IAM user or a role session unbounded by its boundary and session policies, a role
   ARN bounded by them ("Permissions boundaries for IAM entities", resource-based policies).

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
# Actions whose resource-based policy is the role's trust policy (IAM User Guide, "Roles terms
# and concepts": trust policy) and the one action no policy can deny.
ASSUME_ACTIONS = frozenset({"sts:assumerole", "sts:assumerolewithsaml",
                            "sts:assumerolewithwebidentity"})
NO_PERMISSION_ACTION = "sts:getcalleridentity"
NO_PERMISSION_NOTE = ("sts:GetCallerIdentity needs no permission and cannot be denied "
                      "(STS API Reference, GetCallerIdentity)")
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

    ``scps``/``rcps`` are levels of the organization (root, OUs, account): each SCP level needs
    an ``Allow`` (several policies at one level are a union); RCP levels only deny, since
    ``RCPFullAWSAccess`` is attached to every level.
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
    __slots__ = ("request", "caller", "action", "resource", "ctx", "missing", "diags",
                 "has_boundary")

    def __init__(self, request: Request, caller: Caller, has_boundary: bool) -> None:
        self.request = request
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
                # "Permissions boundaries for IAM entities": a Deny with NotPrincipal always
                # denies an IAM user or role (session) that has a permissions boundary
                quirk = self.has_boundary and not st.allow and \
                    self.caller.kind in ("user", "role", "session")
                if not quirk and st.principal.excludes(self.caller, not st.allow,
                                                       self.cross_account()):
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

    def cross_account(self) -> bool:
        return resource_account(self.request, self.caller) != self.caller.account


def resource_account(request: Request, caller: Caller) -> str | None:
    """The account that owns the resource: given, from its ARN, or the caller's (S3 ARNs)."""
    return request.resource_account or account_of(request.resource) or caller.account


def _is_role_arn(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/")


def _scan_levels(ev: _Evaluation, levels: tuple[tuple[Policy, ...], ...],
                 ptype: PolicyType, found: list[MatchedStatement],
                 denies: list[MatchedStatement]) -> bool:
    """Scan every level of the organization; is there one without an applicable ``Allow``?"""
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
    if aws and ev.action == NO_PERMISSION_ACTION:
        return Decision("Allowed", diagnostics=(NO_PERMISSION_NOTE,))
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
    scp_missing = applies_scp and _scan_levels(ev, ps.scps, "scp", scp_allows, denies)
    if applies_rcp:  # RCPs only deny: RCPFullAWSAccess allows at every level
        _scan_levels(ev, ps.rcps, "rcp", rcp_allows, denies)
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

    if scp_missing:
        return deny("scp")
    granted = _granted(ps, request, caller, identity, resource, boundary, session)
    if isinstance(granted, tuple):
        return deny(*granted)
    return Decision("Allowed", tuple(allows), (), missing, diags, tuple(details))


def _granted(ps: PolicySet, request: Request, caller: Caller, identity: _Scan, resource: _Scan,
             boundary: _Scan, session: _Scan) -> bool | tuple[PolicyType, ...]:
    """``True`` when allowed, else the policy types that lacked an ``Allow``."""
    if not caller.is_aws:  # federated, service or anonymous: only the resource policy grants
        return True if resource.allows else ("resource",)
    # "*" names the caller itself: it grants as the caller's own, most specific ARN would
    own = caller.identities[0][1] if caller.identities else "entity"
    categories = {own if c == "wildcard" else c for _, c in resource.allows}
    boundary_ok = not ps.boundaries or bool(boundary.allows)
    session_ok = not ps.session or bool(session.allows)
    identity_ok = caller.kind == "root" or bool(identity.allows)
    requester: list[PolicyType] = []
    if not identity_ok:
        requester.append("identity")
    if not boundary_ok:
        requester.append("permissionsBoundary")
    if not session_ok:
        requester.append("session")
    if resource_account(request, caller) != caller.account:  # cross-account: both must allow
        if not resource.allows:
            return (*requester, "resource")
        return tuple(requester) or True
    trust = ps.resource is not None and request.action.lower() in ASSUME_ACTIONS \
        and _is_role_arn(request.resource)
    if trust and not resource.allows:  # the trust policy must allow, even within the account
        return (*requester, "resource")
    if "session" in categories:
        return True
    if "entity" in categories:
        if caller.kind in ("user", "root"):
            return True
        if boundary_ok and session_ok:
            return True
    if not requester:
        return True
    if resource.allows or ps.resource is None:
        return tuple(requester)
    return (*requester, "resource") if not identity_ok else tuple(requester)
