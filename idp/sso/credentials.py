"""Role credentials for the portal through the STS's own path (STS API Reference,
``AssumeRoleWithWebIdentity``; IAM User Guide, "Passing session tags using
AssumeRoleWithWebIdentity").

``GetRoleCredentials`` is an ``AssumeRoleWithWebIdentity`` done on the person's behalf: the
principal is this IdP's IAM OIDC provider for the role's account, the token's audience is
:data:`AUDIENCE`, ``sub``/``amr`` are the person's, and ``roles`` holds the role ARNs the
mapping gives them.  The role's trust policy is evaluated by the same
:func:`idp.sts.assume.check_trust` (with ``sts:TagSession`` for the mapping's session tags),
the lifetime is :func:`idp.sts.assume.duration_for` (the role's ``MaxSessionDuration``), and the
credentials are issued and audited by :func:`idp.sts.assume.issue`.  A role whose trust policy
does not admit :data:`AUDIENCE` is refused, as ``AssumeRoleWithWebIdentity`` would refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from idp.audit import RequestInfo
from idp.iam import SessionDescription, build_context
from idp.iam.mapping import RoleGrant
from idp.sts.assume import Grant, check_trust, duration_for, issue, role_of
from idp.sts.credentials import Session
from idp.sts.errors import access_denied
from idp.sts.policies import session_inputs
from idp.sts.service import StsService

AUDIENCE = "aws-sso"  # the `<provider>:aud` of portal sessions (add it to the provider's clients)
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")


@dataclass(frozen=True)
class Person:
    """Whom the credentials are for, as the grant (or IdP session) recorded them."""

    username: str
    subject: str
    groups: tuple[str, ...]
    attributes: dict[str, str]
    amr: tuple[str, ...] = ("pwd",)
    family: str = ""
    client_id: str = ""
    jti: str = ""
    expires: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mapping_attributes(self) -> dict[str, str]:
        return {"username": self.username, **self.attributes}

    @property
    def session_name(self) -> str:
        """``RoleSessionName``: the username (as IAM Identity Center names its sessions), or
        the subject when the username has characters STS does not allow."""
        for name in (self.username, self.subject[:64]):
            if _SESSION_NAME.match(name):
                return name
        return "sso-session"


def assume(svc: StsService, person: Person, grant: RoleGrant, granted: Sequence[str],
           info: RequestInfo) -> tuple[Session, str]:
    """``AssumeRoleWithWebIdentity``'s checks and issue for a role the mapping gave."""
    provider = svc.model.oidc_providers.get(grant.oidc_provider_arn or "")
    if provider is None or provider.url.rstrip("/") != svc.settings.issuer.rstrip("/"):
        raise access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity",
                            "the role's account has no OIDC provider for this IdP")
    role = role_of(svc, grant.role_arn)
    inputs = session_inputs({}, svc.model, extra_tags=dict(grant.principal_tags),
                            extra_transitive=grant.transitive_tag_keys)
    oidc: dict[str, Any] = {"aud": AUDIENCE, "sub": person.subject, "amr": list(person.amr),
                            "roles": list(granted)}
    ctx = build_context(SessionDescription(
        principal_arn=provider.arn, now=svc.now(), request_tags=inputs.tags,
        source_ip=info.source_ip or None, oidc_issuer=provider.url, oidc_claims=oidc))
    check_trust(svc, role, provider.arn, "sts:AssumeRoleWithWebIdentity", ctx,
                svc.model.trust_set(role.arn), bool(inputs.tags), False)
    duration = duration_for(role, None, default=svc.settings.default_duration)
    g = Grant(role, person.session_name, duration, inputs, None,
              {"provider": provider.condition_prefix, "aud": AUDIENCE, "sub": person.subject,
               "amr": list(person.amr)})
    return issue(svc, g, info, "GetRoleCredentials", person.username,
                 {"oidcIssuer": provider.url, "ssoClient": person.client_id or None})
