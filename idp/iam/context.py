"""Build a request context from a session description.

The keys are the global condition keys the STS supplies (IAM User Guide, "AWS global condition
context keys": ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:userid``,
``aws:username``, ``aws:PrincipalType``, ``aws:PrincipalTag/*``, ``aws:RequestTag/*``,
``aws:TagKeys``, ``aws:SourceIdentity``, ``aws:MultiFactorAuthPresent``,
``aws:MultiFactorAuthAge``, ``aws:TokenIssueTime``, ``aws:CurrentTime``, ``aws:EpochTime``,
``aws:SourceIp``, ``aws:SecureTransport``, ``aws:RequestedRegion``) and the federation keys of
"Available keys for SAML-based AWS STS federation" (``saml:*``) and "Available keys for AWS
web identity federation" (``<provider>:sub``, ``:aud``, ``:amr``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from idp.iam.arn import Arn
from idp.iam.decision import normalize_context
from idp.iam.variables import ContextValue

ClaimValue = str | Sequence[str] | bool | int


@dataclass(frozen=True)
class SessionDescription:
    """Who is calling, as the STS knows it.  ``now`` is injected (no hidden clock)."""

    principal_arn: str
    now: datetime
    role_arn: str | None = None
    principal_id: str | None = None  # AROA… role ID or AIDA… user ID
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    request_tags: Mapping[str, str] = field(default_factory=dict)
    source_identity: str | None = None
    mfa_authenticated_at: datetime | None = None
    mfa_present: bool | None = None
    token_issue_time: datetime | None = None
    source_ip: str | None = None
    secure_transport: bool | None = None
    requested_region: str | None = None
    saml: Mapping[str, ClaimValue] = field(default_factory=dict)
    oidc_issuer: str | None = None  # e.g. "https://idp.example.com:8443/realm"
    oidc_claims: Mapping[str, ClaimValue] = field(default_factory=dict)


def _iso(when: datetime) -> str:
    w = when if when.tzinfo else when.replace(tzinfo=UTC)
    return w.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def oidc_key_prefix(issuer: str) -> str:
    """``https://host:port/path`` -> ``host:port/path`` (the OIDC provider's condition prefix)."""
    return issuer.split("://", 1)[-1].rstrip("/")


def build_context(s: SessionDescription) -> dict[str, ContextValue]:
    """The request context (lower-case keys) for a request made with session ``s``."""
    arn = Arn.parse(s.principal_arn)
    ctx: dict[str, object] = {}
    principal_type = "Account"
    if arn is not None:
        ctx["aws:PrincipalAccount"] = arn.account
        res = arn.resource
        if arn.service == "sts" and res.startswith("assumed-role/"):
            principal_type = "AssumedRole"
            _, role_name, session_name = (res.split("/", 2) + ["", ""])[:3]
            ctx["aws:PrincipalArn"] = s.role_arn or f"arn:{arn.partition}:iam::{arn.account}" \
                                                    f":role/{role_name}"
            ctx["aws:userid"] = f"{s.principal_id or role_name}:{session_name}"
        elif arn.service == "sts" and res.startswith("federated-user/"):
            principal_type = "FederatedUser"
            ctx["aws:PrincipalArn"] = s.principal_arn
            ctx["aws:userid"] = f"{arn.account}:{res.split('/', 1)[1]}"
        elif res.startswith("user/"):
            principal_type = "User"
            ctx["aws:PrincipalArn"] = s.principal_arn
            ctx["aws:username"] = res.rsplit("/", 1)[1]
            ctx["aws:userid"] = s.principal_id or res.rsplit("/", 1)[1]
        else:
            ctx["aws:PrincipalArn"] = s.principal_arn
            ctx["aws:userid"] = arn.account
    ctx["aws:PrincipalType"] = principal_type
    for k, v in s.principal_tags.items():
        ctx[f"aws:PrincipalTag/{k}"] = v
    for k, v in s.request_tags.items():
        ctx[f"aws:RequestTag/{k}"] = v
    if s.request_tags:
        ctx["aws:TagKeys"] = list(s.request_tags)
    if s.source_identity is not None:
        ctx["aws:SourceIdentity"] = s.source_identity
    if s.mfa_present is not None or s.mfa_authenticated_at is not None:
        ctx["aws:MultiFactorAuthPresent"] = bool(s.mfa_present or s.mfa_authenticated_at)
    if s.mfa_authenticated_at is not None:
        age = int((s.now - s.mfa_authenticated_at).total_seconds())
        ctx["aws:MultiFactorAuthAge"] = max(age, 0)
    if s.token_issue_time is not None:
        ctx["aws:TokenIssueTime"] = _iso(s.token_issue_time)
    ctx["aws:CurrentTime"] = _iso(s.now)
    ctx["aws:EpochTime"] = int(s.now.timestamp())
    if s.source_ip is not None:
        ctx["aws:SourceIp"] = s.source_ip
    if s.secure_transport is not None:
        ctx["aws:SecureTransport"] = s.secure_transport
    if s.requested_region is not None:
        ctx["aws:RequestedRegion"] = s.requested_region
    for name, claim in s.saml.items():
        ctx[name if name.lower().startswith("saml:") else f"saml:{name}"] = claim
    if s.oidc_issuer is not None:
        prefix = oidc_key_prefix(s.oidc_issuer)
        for name, claim in s.oidc_claims.items():
            ctx[f"{prefix}:{name}"] = claim
    return normalize_context(ctx)
