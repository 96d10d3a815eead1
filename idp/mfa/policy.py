"""Who must use a second factor: ``mfa.require`` (groups, IAM roles, SAML SPs, OIDC clients).

A role also requires MFA when its trust policy tests ``aws:MultiFactorAuthPresent``: picking
it without a second factor could only be refused, so the IdP asks for one first (step-up).
"""

from __future__ import annotations

from collections.abc import Iterable

from idp.config import MfaRequireConfig


def _role_name(arn_or_name: str) -> str:
    return arn_or_name.rsplit("/", 1)[-1] if arn_or_name.startswith("arn:") else arn_or_name


class MfaPolicy:
    def __init__(self, require: MfaRequireConfig, mfa_roles: Iterable[str] = ()) -> None:
        self._groups = set(require.groups)
        self._role_arns = {r for r in require.roles if r.startswith("arn:")} | set(mfa_roles)
        self._role_names = {r for r in require.roles if not r.startswith("arn:")}
        self._sps = set(require.service_providers)
        self._clients = set(require.clients)

    def for_groups(self, groups: Iterable[str]) -> bool:
        """Does one of these groups require MFA at every sign-in?"""
        return not self._groups.isdisjoint(groups)

    def for_role(self, role_arn: str) -> bool:
        return role_arn in self._role_arns or _role_name(role_arn) in self._role_names

    def for_sp(self, entity_id: str) -> bool:
        return entity_id in self._sps

    def for_client(self, client_id: str) -> bool:
        return client_id in self._clients
