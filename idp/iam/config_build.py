"""Build an :class:`~idp.iam.model.IamModel` from ``IamConfig``, reporting every problem.

Cross references (a role's managed policies, boundary, account, a mapping rule's role and
providers) are resolved here; each policy document is validated as its policy type
(IAM User Guide, "Policy types").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idp.config import IamConfig, IamPolicyConfig
from idp.iam.errors import MalformedPolicyDocument
from idp.iam.mapping import MappingRule
from idp.iam.policy import Policy, parse_policy

if TYPE_CHECKING:
    from idp.iam.model import IamModel


def build_from_config(cls: type[IamModel], cfg: IamConfig, error: Any,
                      saml_aud: list[str], issuer: str = "") -> IamModel:
    """The model; ``issuer`` tells which OIDC provider is this IdP (see the default trust
    policy, :func:`idp.iam.model.trust_policy_for`)."""
    from idp.iam.model import (
        Account,
        ManagedPolicy,
        OidcProvider,
        Role,
        SamlProvider,
        entity_id,
        trust_policy_for,
    )

    problems: list[str] = []

    def policy(doc: dict[str, Any], kind: Any, pid: str, where: str) -> Policy | None:
        try:
            return parse_policy(doc, kind, pid)
        except MalformedPolicyDocument as exc:
            problems.append(f"{where}: {exc.located()}")
            return None

    ids = [a.id for a in cfg.accounts]
    default = ids[0] if ids else "111122223333"
    if not ids:
        ids = [default]
    if len(set(ids)) != len(ids):
        problems.append("iam.accounts: duplicate account id")

    def acct(value: str | None, where: str) -> str:
        a = value or default
        if a not in ids:
            problems.append(f"{where}: account `{a}` is not in iam.accounts")
        return a

    scps: dict[str, Policy] = {}
    for i, s in enumerate(cfg.scps):
        p = policy(s.document, "scp", s.name, f"iam.scps[{i}].document")
        if p is not None:
            scps[s.name] = p
    accounts = []
    for i, ac in enumerate(cfg.accounts or []):
        account_scps = []
        for name in ac.scps:
            if name not in scps:
                problems.append(f"iam.accounts[{i}].scps: no SCP named `{name}`")
            else:
                account_scps.append(scps[name])
        accounts.append(Account(ac.id, ac.alias, tuple(account_scps)))
    if not cfg.accounts:
        accounts.append(Account(default))

    managed: dict[str, ManagedPolicy] = {}
    for i, pc in enumerate(cfg.policies):
        a = acct(pc.account, f"iam.policies[{i}].account")
        arn = _policy_arn(a, pc)
        p = policy(pc.document, "identity", arn, f"iam.policies[{i}].document")
        if p is not None:
            mp = ManagedPolicy(arn, pc.name, pc.path, p, pc.description)
            managed[arn] = mp
            managed.setdefault(pc.name, mp)

    saml = []
    for i, sc in enumerate(cfg.saml_providers):
        a = acct(sc.account, f"iam.saml_providers[{i}].account")
        saml.append(SamlProvider(f"arn:aws:iam::{a}:saml-provider/{sc.name}", sc.name, a,
                                 sc.metadata_file, sc.metadata_xml))
    oidc = []
    for i, oc in enumerate(cfg.oidc_providers):
        a = acct(oc.account, f"iam.oidc_providers[{i}].account")
        host = oc.url.split("://", 1)[1].rstrip("/")
        oidc.append(OidcProvider(f"arn:aws:iam::{a}:oidc-provider/{host}", oc.url, a,
                                 tuple(oc.client_ids), oc.jwks_url, oc.jwks_file,
                                 tuple(oc.thumbprints)))

    # default trust policies: web identity only through this IdP's own OIDC provider (the
    # `roles` claim of other providers' tokens is not the mapping's), and only for a role
    # some mapping rule names
    own = [o for o in oidc if o.url.rstrip("/") == issuer.rstrip("/")]
    people = [m for m in cfg.mapping if m.groups or m.attributes or m.everyone]
    mapped = {m.role for m in people} | {m.role.lower() for m in people}
    roles = []
    for i, rc in enumerate(cfg.roles):
        where = f"iam.roles[{i}]"
        a = acct(rc.account, f"{where}.account")
        arn = f"arn:aws:iam::{a}:role{rc.path}{rc.name}"
        trust_doc = rc.trust_policy or trust_policy_for(
            arn, [p for p in saml if p.account == a], [o for o in own if o.account == a],
            saml_aud, mapped=arn in mapped or rc.name.lower() in mapped,
            workloads=_workloads(cfg, arn, rc.name))
        trust = policy(trust_doc, "trust", f"{rc.name}/trust", f"{where}.trust_policy")
        inline = [policy(doc, "identity", name, f"{where}.inline_policies.{name}")
                  for name, doc in rc.inline_policies.items()]
        attached: list[ManagedPolicy] = []
        for ref in rc.managed_policies:
            if ref not in managed:
                problems.append(f"{where}.managed_policies: no policy `{ref}`")
            else:
                attached.append(managed[ref])
        boundary = None
        if rc.permissions_boundary is not None:
            boundary = managed.get(rc.permissions_boundary)
            if boundary is None:
                problems.append(f"{where}.permissions_boundary: no policy "
                                f"`{rc.permissions_boundary}`")
        if trust is None:
            continue
        roles.append(Role(arn, rc.name, rc.path, a, entity_id("AROA", arn), trust,
                          tuple(p for p in inline if p is not None), tuple(attached), boundary,
                          rc.max_session_duration, dict(rc.tags), rc.description))

    by_name = {r.name.lower(): r.arn for r in roles} | {r.arn: r.arn for r in roles}
    provider_arns = {p.arn for p in saml} | {p.arn for p in oidc}
    rules = []
    for i, mc in enumerate(cfg.mapping):
        where = f"iam.mapping[{i}]"
        role_arn = by_name.get(mc.role) or by_name.get(mc.role.lower())
        if role_arn is None:
            problems.append(f"{where}.role: no role `{mc.role}`")
            continue
        for key in ("saml_provider", "oidc_provider"):
            ref = getattr(mc, key)
            if ref is not None and ref not in provider_arns:
                problems.append(f"{where}.{key}: no provider `{ref}`")
        rules.append(MappingRule(
            role_arn, frozenset(mc.groups),
            {k: (v,) if isinstance(v, str) else tuple(v) for k, v in mc.attributes.items()},
            mc.everyone, frozenset(mc.service_providers), dict(mc.principal_tags),
            tuple(mc.transitive_tag_keys), mc.saml_provider, mc.oidc_provider,
            frozenset(mc.workloads)))
    if problems:
        raise error(problems)
    return cls(accounts, roles, {m.arn: m for m in managed.values()}.values(), saml, oidc, rules)


def _workloads(cfg: IamConfig, arn: str, name: str) -> list[str]:
    """The client IDs the mapping gives the role to as workloads (sorted, once each)."""
    return sorted({w for m in cfg.mapping if m.role in (arn, name) or m.role.lower()
                   == name.lower() for w in m.workloads})


def _policy_arn(account: str, pc: IamPolicyConfig) -> str:
    return f"arn:aws:iam::{account}:policy{pc.path}{pc.name}"
