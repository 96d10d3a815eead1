"""Principals: who makes a request, and whom a ``Principal``/``NotPrincipal`` element names.

IAM User Guide, "AWS JSON policy elements: Principal" and "...: NotPrincipal":

* an account ID in a policy is the same as the account's root ARN
  (``"123456789012"`` = ``"arn:aws:iam::123456789012:root"``), and naming the account
  *delegates* to it: the account's own identity-based policies must still grant;
* a role session is named by its session ARN (``arn:aws:sts::A:assumed-role/R/S``); naming the
  role ARN matches every session of the role;
* ``NotPrincipal`` is the complement of ``Principal`` (see :meth:`PrincipalSpec.excludes` for
  which ARNs must be listed to escape a ``Deny``);
* ``"*"`` (or ``{"AWS": "*"}``) is everyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from idp.iam.arn import (
    ACCOUNT_ID,
    PROVIDER_ARN,
    WEB_IDENTITY_PROVIDERS,
    Arn,
    canonical_aws_principal,
)

CallerKind = Literal[
    "root", "user", "role", "session", "federated-user", "federated", "service", "anonymous"
]
# How a resource-policy statement named the caller: decides which policies may still limit it
# ("Policy evaluation for requests within a single account", resource-based policies).
Category = Literal["session", "entity", "wildcard", "account"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal of a request, with every ARN that identifies it, most specific first."""

    arn: str
    kind: CallerKind
    account: str | None
    identities: tuple[tuple[str, Category], ...]

    @property
    def is_aws(self) -> bool:
        """An IAM principal of some account (SCPs and identity policies apply to it)."""
        return self.kind in ("root", "user", "role", "session", "federated-user")


def classify(principal: str, ctx: Mapping[str, object] | None = None) -> Caller:
    """Classify a request principal; raise ``ValueError`` for one that is not recognised.
    For a role session, ``aws:PrincipalArn`` in ``ctx`` gives the role ARN with its path."""
    given = (ctx or {}).get("aws:principalarn")
    return _classify(principal, given if isinstance(given, str) else None)


@lru_cache(maxsize=4096)
def _classify(principal: str, given: str | None) -> Caller:
    p = principal.strip()
    if p in ("", "*", "anonymous"):
        return Caller("*", "anonymous", None, ())
    if ACCOUNT_ID.match(p):
        p = canonical_aws_principal(p)
    if PROVIDER_ARN.match(p):
        return Caller(p, "federated", Arn.parse(p).account, ((p, "entity"),))  # type: ignore[union-attr]
    if p in WEB_IDENTITY_PROVIDERS:
        return Caller(p, "federated", None, ((p, "entity"),))
    arn = Arn.parse(p)
    if arn is None:
        if "." in p and " " not in p and ":" not in p:
            return Caller(p, "service", None, ((p, "entity"),))
        raise ValueError(f"`{principal}` is not a principal ARN")
    acct = arn.account
    root = f"arn:{arn.partition}:iam::{acct}:root"
    if not ACCOUNT_ID.match(acct):
        raise ValueError(f"`{principal}` has no account ID")
    res = arn.resource
    if arn.service == "iam" and res == "root":
        return Caller(p, "root", acct, ((p, "entity"),))
    if arn.service == "iam" and res.startswith("user/"):
        return Caller(p, "user", acct, ((p, "entity"), (root, "account")))
    if arn.service == "iam" and res.startswith("role/"):
        return Caller(p, "role", acct, ((p, "entity"), (root, "account")))
    if arn.service == "sts" and res.startswith("assumed-role/") and res.count("/") >= 2:
        role_name = res.split("/")[1]
        role_arn = f"arn:{arn.partition}:iam::{acct}:role/{role_name}"
        if given is not None and given.startswith(f"arn:{arn.partition}:iam::{acct}:role/") \
                and given.rsplit("/", 1)[-1] == role_name:
            role_arn = given
        return Caller(p, "session", acct,
                      ((p, "session"), (role_arn, "entity"), (root, "account")))
    if arn.service == "sts" and res.startswith("federated-user/"):
        return Caller(p, "federated-user", acct, ((p, "session"), (root, "account")))
    raise ValueError(f"`{principal}` is not a principal ARN")


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """A compiled ``Principal`` or ``NotPrincipal`` element."""

    everyone: bool
    aws: frozenset[str]
    federated: frozenset[str]
    service: frozenset[str]
    canonical_user: frozenset[str]

    @classmethod
    def from_element(cls, element: object) -> PrincipalSpec:
        """Build from a validated element (``"*"`` or a mapping of lists/strings)."""
        if element == "*":
            return cls(True, frozenset(), frozenset(), frozenset(), frozenset())
        assert isinstance(element, Mapping)

        def values(key: str) -> list[str]:
            v = element.get(key, [])
            return [v] if isinstance(v, str) else list(v)

        aws = values("AWS")
        return cls(
            everyone="*" in aws,
            aws=frozenset(canonical_aws_principal(v) for v in aws if v != "*"),
            federated=frozenset(values("Federated")),
            service=frozenset(values("Service")),
            canonical_user=frozenset(values("CanonicalUser")),
        )

    def match(self, caller: Caller) -> Category | None:
        """How this element names the caller, or ``None`` when it does not."""
        if self.everyone:
            return "wildcard"
        if caller.kind == "federated":
            return "entity" if caller.arn in self.federated else None
        if caller.kind == "service":
            return "entity" if caller.arn in self.service else None
        for ident, category in caller.identities:
            if ident in self.aws:
                return category
        return None

    def excludes(self, caller: Caller, deny: bool, cross_account: bool) -> bool:
        """For ``NotPrincipal``: is the caller one of the listed exceptions?

        With ``Allow`` (IAM User Guide, "NotPrincipal": "allows all principals *except* the one
        named"), naming any ARN that identifies the caller — its own, its role's, its
        account's — takes it out of the grant: deny on doubt.  With ``Deny`` the caller escapes
        the statement only when every ARN AWS may validate is listed: its own ARN and, for a
        role session, the role ARN ("If the NotPrincipal element was missing the ARN of the
        role, the effect of the policy might be to explicitly deny access to the role"), plus
        the account ARN when the request crosses accounts ("AWS might validate the account
        first").  Within one account the principal's own ARNs suffice.
        """
        if self.everyone:
            return caller.is_aws or caller.kind == "anonymous"
        if caller.kind == "federated":
            return caller.arn in self.federated
        if caller.kind == "service":
            return caller.arn in self.service
        if not caller.identities:
            return False
        if not deny:
            return any(ident in self.aws for ident, _ in caller.identities)
        return all(ident in self.aws for ident, category in caller.identities
                   if cross_account or category != "account")
