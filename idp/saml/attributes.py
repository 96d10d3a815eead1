"""What an assertion says about the person: NameID, attributes, AWS role attributes.

NameID formats (SAML Core §8.3): persistent is pairwise (HMAC of SP and subject: stable per
SP, unlinkable across SPs), transient is fresh per assertion.  The AWS attributes follow the
IAM User Guide, "Configure SAML assertions for the authentication response".
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from idp.saml.build import Attribute, NameId
from idp.saml.errors import INVALID_NAMEID_POLICY, NO_AUTHN_CONTEXT, RESPONDER, SamlStatusError
from idp.saml.metadata import EMAIL, NAMEID_FORMATS, PERSISTENT, TRANSIENT, UNSPECIFIED

AWS = "https://aws.amazon.com/SAML/Attributes/"
AC = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
PASSWORD = AC + "Password"
PPT = AC + "PasswordProtectedTransport"
REFEDS_MFA = "https://refeds.org/profile/mfa"
"""The REFEDS Multi-Factor Authentication Profile (2017): a second factor was used."""
# Weakest to strongest: the order RequestedAuthnContext comparisons use (SAML Core §3.3.2.2.1).
AC_ORDER = (AC + "unspecified", PASSWORD, PPT, REFEDS_MFA)
DEFAULT_MAP = {  # eduPerson / inetOrgPerson OIDs (SAML V2.0 X.500/LDAP Attribute Profile)
    "urn:oid:0.9.2342.19200300.100.1.1": "username",
    "urn:oid:0.9.2342.19200300.100.1.3": "email",
    "urn:oid:2.16.840.1.113730.3.1.241": "name",
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": "groups",
}
FRIENDLY = {"urn:oid:0.9.2342.19200300.100.1.1": "uid", "urn:oid:0.9.2342.19200300.100.1.3":
            "mail", "urn:oid:2.16.840.1.113730.3.1.241": "displayName",
            "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": "isMemberOf"}
_ROLE, _ROLE_SESSION_NAME, _SESSION_DURATION = AWS + "Role", AWS + "RoleSessionName", \
    AWS + "SessionDuration"
_PRINCIPAL_TAG, _TRANSITIVE_TAG_KEYS, _SOURCE_IDENTITY = AWS + "PrincipalTag:", \
    AWS + "TransitiveTagKeys", AWS + "SourceIdentity"
_AWS_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)


def name_id(fmt: str, sp: str, subject: str, email: str | None, username: str,
            salt: bytes, issuer: str) -> NameId:
    """The NameID of a subject for an SP in a format (SAML Core §8.3.1, §8.3.7, §8.3.8)."""
    if fmt == PERSISTENT:
        mac = hmac.digest(salt, f"{sp}\x00{subject}".encode(), "sha256")
        value = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        return NameId(value, fmt, sp_name_qualifier=sp, name_qualifier=issuer)
    if fmt == TRANSIENT:
        return NameId("_" + secrets.token_hex(20), fmt, sp_name_qualifier=sp,
                      name_qualifier=issuer)
    if fmt == EMAIL:
        if not email:
            raise SamlStatusError(INVALID_NAMEID_POLICY, "no email address for this person",
                                  top=RESPONDER)
        return NameId(email, fmt)
    if fmt == UNSPECIFIED:
        return NameId(username, fmt)
    raise SamlStatusError(INVALID_NAMEID_POLICY, f"NameID format `{fmt}` is not supported")


def pick_format(requested: str | None, sp_formats: Sequence[str], configured: str | None
                ) -> str:
    """The NameIDPolicy format, else the SP's configured or first supported one, else
    persistent (SAML Core §3.4.1.1: unspecified in a request means "any")."""
    if requested and requested != UNSPECIFIED:
        if requested not in NAMEID_FORMATS:
            raise SamlStatusError(INVALID_NAMEID_POLICY,
                                  f"NameID format `{requested}` is not supported")
        return requested
    if configured:
        return configured
    for f in sp_formats:
        if f in NAMEID_FORMATS and f != UNSPECIFIED:
            return f
    return PERSISTENT


def authn_context(tls: bool, mfa: bool = False) -> str:
    """The context of a login: with a second factor REFEDS MFA; a password over TLS,
    PasswordProtectedTransport."""
    return REFEDS_MFA if mfa else PPT if tls else PASSWORD


def satisfies(actual: str, requested: Sequence[str], comparison: str) -> bool:
    """Whether ``actual`` meets a ``RequestedAuthnContext`` (SAML Core §3.3.2.2.1)."""
    if not requested:
        return True
    rank = AC_ORDER.index(actual)
    wanted = [AC_ORDER.index(r) for r in requested if r in AC_ORDER]
    return {
        "exact": actual in requested,
        "minimum": bool(wanted) and rank >= min(wanted),
        "better": bool(wanted) and rank > min(wanted),
        "maximum": bool(wanted) and rank <= max(wanted),
    }[comparison]


def check_authn_context(actual: str, requested: Sequence[str], comparison: str) -> None:
    """``RequestedAuthnContext`` (SAML Core §3.3.2.2.1): NoAuthnContext unless satisfied."""
    if not satisfies(actual, requested, comparison):
        raise SamlStatusError(NO_AUTHN_CONTEXT, "the requested authentication context cannot "
                              "be satisfied", top=RESPONDER)


def directory_values(name: str, username: str, subject: str, groups: Sequence[str],
                     attributes: Mapping[str, str]) -> tuple[str, ...]:
    if name == "groups":
        return tuple(groups)
    if name == "username":
        return (username,)
    if name == "subject":
        return (subject,)
    value = attributes.get(name)
    return (value,) if value else ()


def mapped(attribute_map: Mapping[str, str], username: str, subject: str,
           groups: Sequence[str], attributes: Mapping[str, str]) -> list[Attribute]:
    out = []
    for saml_name, source in (attribute_map or DEFAULT_MAP).items():
        values = directory_values(source, username, subject, groups, attributes)
        if values:
            out.append(Attribute(saml_name, values, FRIENDLY.get(saml_name)))
    return out


def aws_name(value: str) -> str:
    """A RoleSessionName / SourceIdentity: ``[\\w+=,.@-]``, 2–64 characters (STS API)."""
    name = _AWS_NAME.sub("-", value)[:64]
    return name if len(name) >= 2 else (name + "--")[:2]


def aws_attributes(grants: Sequence[Any], username: str, email: str | None,
                   duration: int) -> list[Attribute]:
    """Role (``role-arn,provider-arn``), RoleSessionName, SessionDuration (capped by every
    granted role's MaxSessionDuration so the STS accepts it), PrincipalTag:*,
    TransitiveTagKeys and SourceIdentity."""
    grants = [g for g in grants if getattr(g, "saml_provider_arn", None)]
    if not grants:
        return []
    out = [Attribute(_ROLE, tuple([f"{g.role_arn},{g.saml_provider_arn}" for g in grants])),
           Attribute(_ROLE_SESSION_NAME, (aws_name(email or username),))]
    cap = min([duration, *[int(getattr(g, "max_session_duration", 3600)) for g in grants]])
    out.append(Attribute(_SESSION_DURATION, (str(max(900, cap)),)))
    tags: dict[str, str] = {}
    transitive: dict[str, None] = {}
    for g in grants:
        for k, v in (getattr(g, "principal_tags", None) or {}).items():
            tags.setdefault(k, v)
        transitive.update(dict.fromkeys(getattr(g, "transitive_tag_keys", ()) or ()))
    for k, v in tags.items():
        out.append(Attribute(_PRINCIPAL_TAG + k, (v,)))
    keys = tuple([k for k in transitive if k in tags])
    if keys:
        out.append(Attribute(_TRANSITIVE_TAG_KEYS, keys))
    out.append(Attribute(_SOURCE_IDENTITY, (aws_name(username),)))
    return out
