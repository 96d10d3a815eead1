"""Who a token speaks for, and the claims it carries (OIDC Core §2, §5.1, §5.4, §8; RFC 9068 §2.2).

Scopes select claims: ``profile`` → ``name``, ``preferred_username``; ``email`` → ``email``;
``groups`` → ``groups``; ``roles`` → ``roles`` (the mapped IAM role ARNs, from
:meth:`idp.iam.IamModel.roles_for`, the same mapping SAML uses) and
``https://aws.amazon.com/tags`` (IAM User Guide, "Passing session tags using
AssumeRoleWithWebIdentity": ``principal_tags`` values are one-element lists).

The ``roles`` claim is what the default trust policies check (``<provider>:roles``), so it must
say what the mapping gives the person *now*: every token is issued for the groups and
attributes the directory holds at that moment (:meth:`ClaimBuilder.current`), not those read
at sign-in, and a refreshed token is computed again the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from authlib.oidc.core.util import create_half_hash

from idp.oidc.clients import Client

ACR = "urn:idp:acr:password"
ACR_MFA = "https://refeds.org/profile/mfa"
"""``acr`` of a session with a second factor: the REFEDS MFA profile, as SAML says it."""


def acr_of(amr: list[str]) -> str:
    """The ``acr`` a session's ``amr`` (RFC 8176) earns: MFA only when ``mfa`` is in it."""
    return ACR_MFA if "mfa" in amr else ACR
AWS_TAGS = "https://aws.amazon.com/tags"
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "preferred_username"),
    "email": ("email", "email_verified"),
    "groups": ("groups",),
    "roles": ("roles", AWS_TAGS),
}
SCOPES = ("openid", *SCOPE_CLAIMS, "offline_access")


class RoleMapper(Protocol):
    def roles_for(self, identity_groups: Any, attributes: Any, sp_or_client: str | None,
                  kind: Any = None) -> list[Any]: ...

    def workload_roles(self, client_id: str) -> list[str]: ...


class Person(Protocol):
    """A person as the directory holds them (:class:`idp.directory.Identity`)."""

    @property
    def subject(self) -> str: ...
    @property
    def groups(self) -> Sequence[str]: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


class People(Protocol):
    """Where the current groups and attributes of a person are read (the directory)."""

    def lookup(self, username: str) -> Person | None: ...


@dataclass
class Grantee:
    """The signed-in person a grant is for, frozen at the time of the grant."""

    username: str
    subject: str
    groups: list[str]
    attributes: dict[str, str]
    auth_time: int
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    sid: str = ""

    def to_json(self) -> dict[str, Any]:
        """A copy as plain JSON values (the lists and the attribute map copied)."""
        return {"username": self.username, "subject": self.subject,
                "groups": list(self.groups), "attributes": dict(self.attributes),
                "auth_time": self.auth_time, "amr": list(self.amr), "sid": self.sid}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grantee:
        return cls(**data)


def session_sid(secret: bytes, session_id: str) -> str:
    """The ``sid`` claim of an IdP session: an HMAC of its ID, never the cookie value."""
    mac = hmac.new(secret, b"oidc-sid|" + session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def half_hash(value: str, alg: str = "RS256") -> str:
    """``at_hash`` (OIDC Core §3.1.3.6): left half of the alg's hash, base64url (Authlib)."""
    out = create_half_hash(value, alg)
    return out.decode() if isinstance(out, bytes) else str(out)


class ClaimBuilder:
    """Subjects and claims for one provider."""

    def __init__(self, roles: RoleMapper | None, pairwise_salt: bytes,
                 people: People | None = None) -> None:
        self.roles = roles
        self.salt = pairwise_salt
        self.people = people

    def current(self, grantee: Grantee) -> Grantee | None:
        """The grantee with the groups and attributes the directory holds now, ``None`` when
        the person is gone (or the name now belongs to someone else).  Raises
        :class:`idp.errors.DirectoryUnavailable` when the directory does not answer."""
        if self.people is None:
            return grantee
        person = self.people.lookup(grantee.username)
        if person is None or not hmac.compare_digest(person.subject, grantee.subject):
            return None
        return replace(grantee, groups=list(person.groups), attributes=dict(person.attributes))

    def subject(self, client: Client, grantee: Grantee) -> str:
        """Stable ``sub``; pairwise per sector (OIDC Core §8.1) when the client asks for it."""
        if client.config.subject_type != "pairwise":
            return grantee.subject
        uris = client.config.redirect_uris
        sector = (urlsplit(uris[0]).hostname or client.client_id) if uris else client.client_id
        mac = hmac.new(self.salt, f"{sector}|{grantee.subject}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def user_claims(self, client: Client, grantee: Grantee, scopes: list[str]) -> dict[str, Any]:
        """The claims the granted scopes release."""
        out: dict[str, Any] = {}
        attrs = grantee.attributes
        if "profile" in scopes:
            out["preferred_username"] = grantee.username
            if attrs.get("name"):
                out["name"] = attrs["name"]
        if "email" in scopes and attrs.get("email"):
            out["email"] = attrs["email"]
            out["email_verified"] = True
        if "groups" in scopes:
            out["groups"] = list(grantee.groups)
        if "roles" in scopes:
            out.update(self.role_claims(client.client_id, grantee))
        return out

    def workload_roles(self, client_id: str) -> list[str]:
        """The ``roles`` claim of a client's own (client-credentials) token."""
        return [] if self.roles is None else self.roles.workload_roles(client_id)

    def role_claims(self, client_id: str, grantee: Grantee) -> dict[str, Any]:
        """``roles`` and the AWS session-tag claim from the IAM role mapping."""
        if self.roles is None:
            return {"roles": []}
        attrs = {"username": grantee.username, **grantee.attributes}
        grants = self.roles.roles_for(grantee.groups, attrs, client_id, "oidc")
        tags: dict[str, list[str]] = {}
        transitive: list[str] = []
        for g in grants:
            for k, v in g.principal_tags.items():
                tags.setdefault(k, [v])
            transitive.extend(k for k in g.transitive_tag_keys if k not in transitive)
        out: dict[str, Any] = {"roles": [g.role_arn for g in grants]}
        if tags:
            out[AWS_TAGS] = {"principal_tags": tags, "transitive_tag_keys": transitive}
        return out
