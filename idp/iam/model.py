"""The IAM model: accounts, roles, managed policies, SCPs, identity providers, role mapping.

Built from :class:`idp.config.IamConfig` (``IamModel.from_config``) or the demo fixtures
(:func:`demo_model`, DESIGN.md "The demo").  Shapes follow the IAM API Reference data types
``Role`` (``RoleId``, ``Path``, ``MaxSessionDuration`` 3600–43200, ``PermissionsBoundary``,
``Tags``), ``Policy``, ``SAMLProviderListEntry`` and ``OpenIDConnectProviderListEntry``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idp.config import IamConfig
from idp.errors import ConfigError
from idp.iam.errors import NoSuchEntity
from idp.iam.evaluate import PolicySet
from idp.iam.mapping import MappingRule, ProviderKind, RoleGrant, grants_for
from idp.iam.policy import Policy, parse_policy

MODEL_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
AWS_SIGNIN_SAML = "https://signin.aws.amazon.com/saml"


def saml_recipients(issuer: str) -> list[str]:
    """The consumer URLs AWS-style assertions are presented to: AWS's sign-in endpoint and the
    IdP's own federation page.  ``saml:aud`` holds one of them (the assertion's Recipient)."""
    return [AWS_SIGNIN_SAML, issuer.rstrip("/") + "/federation/saml"]


def entity_id(prefix: str, arn: str) -> str:
    """A stable IAM-style unique ID (``AROA…``) derived from the ARN."""
    digest = base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()
    return prefix + digest[:17]


@dataclass(frozen=True)
class ManagedPolicy:
    arn: str
    name: str
    path: str
    policy: Policy
    description: str = ""


@dataclass(frozen=True)
class SamlProvider:
    arn: str
    name: str
    account: str
    metadata_file: Path | None = None
    metadata_xml: str | None = None


@dataclass(frozen=True)
class OidcProvider:
    arn: str
    url: str
    account: str
    client_ids: tuple[str, ...] = ()
    jwks_url: str | None = None
    jwks_file: Path | None = None
    thumbprints: tuple[str, ...] = ()

    @property
    def condition_prefix(self) -> str:
        """``host[:port][/path]``: the prefix of its ``:aud``/``:sub`` condition keys."""
        return self.arn.split(":oidc-provider/", 1)[1]


@dataclass(frozen=True)
class Role:
    arn: str
    name: str
    path: str
    account: str
    role_id: str
    trust_policy: Policy
    inline_policies: tuple[Policy, ...] = ()
    managed_policies: tuple[ManagedPolicy, ...] = ()
    permissions_boundary: ManagedPolicy | None = None
    max_session_duration: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    create_date: datetime = MODEL_EPOCH


@dataclass(frozen=True)
class Account:
    id: str
    alias: str | None = None
    scps: tuple[Policy, ...] = ()


def trust_policy_for(role_arn: str, saml: Sequence[SamlProvider], oidc: Sequence[OidcProvider],
                     saml_aud: Sequence[str], *, mapped: bool,
                     workloads: Sequence[str] = (), mfa: bool = False) -> dict[str, Any]:
    """The default trust policy of one role: who the account's providers may vouch for.

    * SAML: each SAML provider with ``SAML:aud`` = the consumer URLs.  The STS also requires
      the assertion's ``Role`` attribute to name this role and provider (IAM User Guide,
      "Configure SAML assertions for the authentication response"), so a SAML provider
      vouches only for the roles it puts in the assertion.
    * Web identity, for a role the mapping gives to someone (``mapped``): each OIDC provider
      in ``oidc`` (the caller passes this IdP's own: only its tokens' ``roles`` claim comes
      from the mapping) with ``<provider>:aud`` = its client IDs AND
      ``ForAnyValue:StringEquals`` ``<provider>:roles`` = this role's ARN.  A token without
      the claim, or whose claim does not list the role, is refused.  ``aud`` alone would admit
      every user of the client.
    * Workloads: for a role the mapping gives to confidential clients (``workloads``), each
      such OIDC provider with ``<provider>:sub`` = those client IDs (a client-credentials
      token's subject is its client ID), ``<provider>:aud`` = the provider's client IDs, AND
      ``<provider>:roles`` = this role's ARN (the token lists the roles mapped to its client).
    * A role the mapping gives to no one gets no web identity statement: nobody takes it
      with a token.  A role no provider may vouch for denies ``sts:AssumeRole`` to everyone.
    * ``mfa``: every statement also requires ``Bool`` ``aws:MultiFactorAuthPresent`` =
      ``true`` (the demo's Operator).
    """
    statements: list[dict[str, Any]] = []
    for p in saml:
        statements.append({
            "Effect": "Allow", "Principal": {"Federated": p.arn},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
            "Condition": {"StringEquals": {"SAML:aud": list(saml_aud)}},
        })
    for o in oidc if mapped else ():
        statements.append({
            "Effect": "Allow", "Principal": {"Federated": o.arn},
            "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
            "Condition": {
                "StringEquals": {f"{o.condition_prefix}:aud": list(o.client_ids)},
                "ForAnyValue:StringEquals": {f"{o.condition_prefix}:roles": role_arn},
            },
        })
    for o in oidc if workloads else ():
        statements.append({
            "Sid": "Workloads", "Effect": "Allow", "Principal": {"Federated": o.arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{o.condition_prefix}:aud": list(o.client_ids),
                                 f"{o.condition_prefix}:sub": list(workloads)},
                "ForAnyValue:StringEquals": {f"{o.condition_prefix}:roles": role_arn},
            },
        })
    if mfa:
        for st in statements:
            st["Condition"]["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    if not statements:  # nobody may assume the role
        statements.append({"Effect": "Deny", "Principal": {"AWS": "*"},
                           "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}


class IamModel:
    """The runtime IAM model (immutable once built)."""

    def __init__(self, accounts: Iterable[Account] = (), roles: Iterable[Role] = (),
                 policies: Iterable[ManagedPolicy] = (), saml: Iterable[SamlProvider] = (),
                 oidc: Iterable[OidcProvider] = (), mapping: Iterable[MappingRule] = ()) -> None:
        self.accounts = {a.id: a for a in accounts}
        self.roles = {r.arn: r for r in roles}
        self.policies = {p.arn: p for p in policies}
        self.saml_providers = {p.arn: p for p in saml}
        self.oidc_providers = {p.arn: p for p in oidc}
        self.mapping = tuple(mapping)
        self._sets: dict[str, PolicySet] = {}
        self._grant_cache: tuple[dict[str, tuple[str | None, str | None]],
                                 dict[str, int]] | None = None

    # -- look-ups ---------------------------------------------------------------------------
    def role(self, name_or_arn: str) -> Role:
        """A role by ARN, or by name (IAM role names are case-insensitive); ``NoSuchEntity``."""
        if name_or_arn in self.roles:
            return self.roles[name_or_arn]
        for r in self.roles.values():
            if r.name.lower() == name_or_arn.lower():
                return r
        raise NoSuchEntity(f"The role with name {name_or_arn} cannot be found.")

    def sorted_roles(self, path_prefix: str = "/") -> list[Role]:
        return sorted((r for r in self.roles.values() if r.path.startswith(path_prefix)),
                      key=lambda r: (r.account, r.name.lower()))

    def policy_set(self, role_arn: str, session_policies: Sequence[Any] = ()) -> PolicySet:
        """The compiled policies governing a session of the role (cached without session
        policies): identity (inline + managed), boundary, account SCPs, plus ``session``."""
        if not session_policies and role_arn in self._sets:
            return self._sets[role_arn]
        role = self.role(role_arn)
        acct = self.accounts.get(role.account)
        ps = PolicySet.build(
            identity=[*role.inline_policies, *(m.policy for m in role.managed_policies)],
            boundaries=[role.permissions_boundary.policy] if role.permissions_boundary else [],
            session=list(session_policies),
            scps=list(acct.scps) if acct and acct.scps else [],
        )
        if not session_policies:
            self._sets[role_arn] = ps
        return ps

    def trust_set(self, role_arn: str) -> PolicySet:
        """The role's trust policy as the resource policy of an ``sts:AssumeRole*`` request."""
        key = f"trust:{role_arn}"
        if key not in self._sets:
            self._sets[key] = PolicySet(resource=self.role(role_arn).trust_policy)
        return self._sets[key]

    def roles_for(self, identity_groups: Iterable[str], attributes: Mapping[str, str],
                  sp_or_client: str | None, kind: ProviderKind | None = None) -> list[RoleGrant]:
        """The roles the mapping grants (see :func:`idp.iam.mapping.grants_for`)."""
        providers, durations = self._grant_tables()
        return grants_for(self.mapping, identity_groups, attributes, sp_or_client, providers,
                          durations, kind)

    def workload_roles(self, client_id: str) -> list[str]:
        """The roles the mapping gives a confidential client itself (``workloads``), in rule
        order: its client-credentials token's ``roles`` claim."""
        return list(dict.fromkeys(r.role_arn for r in self.mapping if client_id in r.workloads))

    def _grant_tables(self) -> tuple[dict[str, tuple[str | None, str | None]], dict[str, int]]:
        """Per role: its account's SAML and OIDC provider ARNs, and its MaxSessionDuration
        (computed once: the model does not change after it is built)."""
        tables = self._grant_cache
        if tables is None:
            providers: dict[str, tuple[str | None, str | None]] = {}
            for r in self.roles.values():
                saml = next((p.arn for p in self.saml_providers.values()
                             if p.account == r.account), None)
                oidc = next((p.arn for p in self.oidc_providers.values()
                             if p.account == r.account), None)
                providers[r.arn] = (saml, oidc)
            durations = {r.arn: r.max_session_duration for r in self.roles.values()}
            tables = self._grant_cache = (providers, durations)
        return tables

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: IamConfig, issuer: str, *, demo: bool = False) -> IamModel:
        """Build the model; an empty config gives the demo fixtures only when ``demo``.
        Every problem is reported at once (``ConfigError``)."""
        if cfg.empty:
            return demo_model(issuer) if demo else cls()
        from idp.iam.config_build import build_from_config

        return build_from_config(cls, cfg, ConfigError, saml_recipients(issuer), issuer)


def demo_model(issuer: str) -> IamModel:
    """The demo fixtures of DESIGN.md: account 111122223333, Admin/Developer/ReadOnly roles
    trusting the demo SAML provider and this IdP's OIDC provider for the people the mapping
    gives each role (:func:`trust_policy_for`)."""
    acct = "111122223333"
    host = issuer.split("://", 1)[-1].rstrip("/")
    saml = SamlProvider(f"arn:aws:iam::{acct}:saml-provider/demo-idp", "demo-idp", acct)
    oidc = OidcProvider(f"arn:aws:iam::{acct}:oidc-provider/{host}", issuer.rstrip("/"), acct,
                        ("demo-cli", "demo-web", "aws-sso"),  # aws-sso: the SSO portal
                        jwks_url=issuer.rstrip("/") + "/oauth2/jwks")
    tags = {"username": "${username}", "email": "${email}"}
    mapping = [
        MappingRule(f"arn:aws:iam::{acct}:role/Admin", groups=frozenset({"admins"}),
                    principal_tags=tags, transitive_tag_keys=("username",)),
        MappingRule(f"arn:aws:iam::{acct}:role/Developer", groups=frozenset({"engineering"}),
                    principal_tags=tags, transitive_tag_keys=("username",)),
        MappingRule(f"arn:aws:iam::{acct}:role/ReadOnly", everyone=True,
                    principal_tags=tags, transitive_tag_keys=("username",)),
        MappingRule(f"arn:aws:iam::{acct}:role/Operator", groups=frozenset({"operators"}),
                    principal_tags=tags, transitive_tag_keys=("username",)),
    ]
    mapped = {r.role_arn for r in mapping}
    docs: dict[str, tuple[int, dict[str, Any]]] = {
        "Admin": (3600, {"Version": "2012-10-17", "Statement": [
            {"Sid": "AdminAll", "Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        "Developer": (14400, {"Version": "2012-10-17", "Statement": [
            {"Sid": "S3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Sid": "Ec2Read", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
            {"Sid": "Logs", "Effect": "Allow", "Action": "logs:*", "Resource": "*"},
            {"Sid": "NoIam", "Effect": "Deny", "Action": "iam:*", "Resource": "*"}]}),
        "ReadOnly": (43200, {"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadOnly", "Effect": "Allow",
             "Action": ["*:Get*", "*:List*", "*:Describe*", "s3:Head*"], "Resource": "*"}]}),
        "Operator": (3600, {"Version": "2012-10-17", "Statement": [
            {"Sid": "Operate", "Effect": "Allow",
             "Action": ["ec2:*Instances", "ec2:Describe*", "ssm:*"], "Resource": "*"},
            {"Sid": "TerminateNeedsRecentMfa", "Effect": "Deny",
             "Action": "ec2:TerminateInstances", "Resource": "*",
             "Condition": {"NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"}}},
            {"Sid": "TerminateNeedsMfa", "Effect": "Deny",
             "Action": "ec2:TerminateInstances", "Resource": "*",
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}),
    }
    roles = []
    for name, (duration, doc) in docs.items():
        arn = f"arn:aws:iam::{acct}:role/{name}"
        trust = parse_policy(trust_policy_for(arn, [saml], [oidc], saml_recipients(issuer),
                                              mapped=arn in mapped, mfa=name == "Operator"),
                             "trust", f"{name}/trust")
        roles.append(Role(arn, name, "/", acct, entity_id("AROA", arn), trust,
                          (parse_policy(doc, "identity", f"{name}Access"),),
                          max_session_duration=duration, description=f"demo {name} role"))
    return IamModel([Account(acct, "demo")], roles, (), [saml], [oidc], mapping)
