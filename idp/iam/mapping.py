"""Role mapping: directory groups and attributes -> the roles a user may take.

The result feeds the SAML ``https://aws.amazon.com/SAML/Attributes/Role`` attribute, whose
values are ``role-arn,provider-arn`` pairs, plus ``.../PrincipalTag:*`` and
``.../TransitiveTagKeys`` (IAM User Guide, "Configure SAML assertions for the authentication
response", "Passing session tags using AssumeRoleWithSAML"), and the OIDC tokens' role claims
(``AssumeRoleWithWebIdentity``, "Passing session tags using AssumeRoleWithWebIdentity").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from idp.iam.arn import compile_pattern, mark

ProviderKind = Literal["saml", "oidc"]
_ATTR_REF = re.compile(r"\$\{([^}]+)\}")
# Session tag limits: "Tagging AWS STS sessions" (key 128, value 256 characters).
_TAG_KEY = re.compile(r"^[\w\s.:/=+\-@]{1,128}$", re.UNICODE)
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{0,256}$", re.UNICODE)


@dataclass(frozen=True)
class RoleGrant:
    """A role a user may assume, with the providers that can vouch for them."""

    role_arn: str
    saml_provider_arn: str | None
    oidc_provider_arn: str | None
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    max_session_duration: int = 3600
    kind: ProviderKind | None = None

    @property
    def provider_arn(self) -> str | None:
        """The provider for the ``kind`` asked for (SAML first when no kind was asked)."""
        if self.kind == "oidc":
            return self.oidc_provider_arn
        return self.saml_provider_arn if self.kind == "saml" or self.saml_provider_arn \
            else self.oidc_provider_arn

    @property
    def saml_role_value(self) -> str:
        """The ``Role`` attribute value: ``role-arn,saml-provider-arn``."""
        return f"{self.role_arn},{self.saml_provider_arn or ''}"


@dataclass(frozen=True)
class MappingRule:
    """One rule: who (groups OR-ed, attributes AND-ed, or everyone), for which SPs/clients."""

    role_arn: str
    groups: frozenset[str] = frozenset()
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    everyone: bool = False
    clients: frozenset[str] = frozenset()
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    saml_provider_arn: str | None = None
    oidc_provider_arn: str | None = None
    workloads: frozenset[str] = frozenset()  # client IDs taking the role themselves

    def applies(self, groups: frozenset[str], attributes: Mapping[str, str],
                client: str | None) -> bool:
        if self.clients and client not in self.clients:
            return False
        if not self.everyone and self.groups and not (self.groups & groups):
            return False
        for name, wanted in self.attributes.items():
            value = attributes.get(name)
            if value is None or not any(compile_pattern(mark(w), "string")(value)
                                        for w in wanted):
                return False
        return self.everyone or bool(self.groups) or bool(self.attributes)

    def tags_for(self, attributes: Mapping[str, str]) -> dict[str, str]:
        """Principal tags with ``${attribute}`` filled in; a tag whose attribute is missing, or
        whose value AWS would reject, is left out."""
        out: dict[str, str] = {}
        for key, template in self.principal_tags.items():
            missing = False
            if "${" not in template:
                value = template
            else:
                def sub(m: re.Match[str]) -> str:
                    nonlocal missing
                    found = attributes.get(m.group(1).strip())
                    if found is None:
                        missing = True
                        return ""
                    return found

                value = _ATTR_REF.sub(sub, template)
            if not missing and _TAG_KEY.match(key) and _TAG_VALUE.match(value):
                out[key] = value
        return out


def grants_for(rules: Iterable[MappingRule], identity_groups: Iterable[str],
               attributes: Mapping[str, str], sp_or_client: str | None,
               default_providers: Mapping[str, tuple[str | None, str | None]],
               max_durations: Mapping[str, int],
               kind: ProviderKind | None = None) -> list[RoleGrant]:
    """Every role granted by the rules, in rule order, one grant per role.

    ``default_providers`` maps a role ARN to its account's (SAML, OIDC) provider ARNs.  With a
    ``kind``, roles without a provider of that kind are left out.  Tags of several rules for one
    role are merged (the first rule wins a key).
    """
    groups = frozenset(identity_groups)
    merged: dict[str, RoleGrant] = {}
    for rule in rules:
        if not rule.applies(groups, attributes, sp_or_client):
            continue
        saml, oidc = default_providers.get(rule.role_arn, (None, None))
        saml = rule.saml_provider_arn or saml
        oidc = rule.oidc_provider_arn or oidc
        tags = rule.tags_for(attributes)
        prev = merged.get(rule.role_arn)
        if prev is not None:
            tags = {**tags, **prev.principal_tags}
            keys = tuple(dict.fromkeys((*prev.transitive_tag_keys, *rule.transitive_tag_keys)))
            merged[rule.role_arn] = RoleGrant(prev.role_arn, prev.saml_provider_arn or saml,
                                              prev.oidc_provider_arn or oidc, tags, keys,
                                              prev.max_session_duration, kind)
            continue
        merged[rule.role_arn] = RoleGrant(
            rule.role_arn, saml, oidc, tags,
            tuple(k for k in rule.transitive_tag_keys if k in tags),
            max_durations.get(rule.role_arn, 3600), kind)
    out = list(merged.values())
    if kind == "saml":
        out = [g for g in out if g.saml_provider_arn]
    elif kind == "oidc":
        out = [g for g in out if g.oidc_provider_arn]
    return out
