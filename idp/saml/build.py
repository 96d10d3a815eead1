"""Build the IdP's SAML messages as lxml trees (SAML Core §2, §3).

Only plain data goes in: the protocol core decides what an assertion says, this module only
writes it down.  Signing and encryption happen afterwards (``crypto``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from idp.saml.errors import SUCCESS
from idp.saml.xml import NS, SAML, SAMLP

NSMAP = {"samlp": NS["samlp"], "saml": NS["saml"]}
ATTR_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
XSI_TYPE = f"{{{NS['xsi']}}}type"


_INSTANTS: dict[int, str] = {}


def instant(t: float) -> str:
    """``xs:dateTime`` in UTC without fractions (SAML Core §1.3.3); the last few hundred
    seconds formatted are remembered (an assertion writes the same few instants)."""
    second = int(t)
    value = _INSTANTS.get(second)
    if value is None:
        if len(_INSTANTS) >= 512:
            _INSTANTS.clear()
        value = _INSTANTS[second] = dt.datetime.fromtimestamp(second, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    return value


def parse_instant(value: str | None) -> float | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


@dataclass(frozen=True)
class NameId:
    value: str
    format: str
    sp_name_qualifier: str | None = None
    name_qualifier: str | None = None


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]
    friendly_name: str | None = None


@dataclass(frozen=True)
class AssertionData:
    """Everything an assertion states (SAML Core §2.3–§2.7; Profiles §4.1.4.2)."""

    id: str
    issuer: str
    now: float
    name_id: NameId
    audience: str
    recipient: str
    in_response_to: str | None
    lifetime: int
    skew: int
    authn_instant: float
    session_index: str
    session_not_on_or_after: float
    authn_context: str
    attributes: Sequence[Attribute] = field(default_factory=tuple)


def _el(parent: etree._Element, tag: str, text: str | None = None,
        **attrs: str | None) -> etree._Element:
    e = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        e.text = text
    return e


def _issuer(parent: etree._Element, issuer: str) -> None:
    _el(parent, SAML + "Issuer", issuer)


def _name_id(parent: etree._Element, n: NameId) -> None:
    _el(parent, SAML + "NameID", n.value, Format=n.format, SPNameQualifier=n.sp_name_qualifier,
        NameQualifier=n.name_qualifier)


def assertion(a: AssertionData) -> etree._Element:
    """A bearer assertion for Web Browser SSO (SAML Profiles §4.1.4.2)."""
    root = etree.Element(SAML + "Assertion", {"ID": a.id, "Version": "2.0",
                                              "IssueInstant": instant(a.now)},
                         nsmap={"saml": NS["saml"], "xs": NS["xs"], "xsi": NS["xsi"]})
    _issuer(root, a.issuer)
    subject = _el(root, SAML + "Subject")
    _name_id(subject, a.name_id)
    sc = _el(subject, SAML + "SubjectConfirmation", Method=BEARER)
    _el(sc, SAML + "SubjectConfirmationData", NotOnOrAfter=instant(a.now + a.lifetime),
        Recipient=a.recipient, InResponseTo=a.in_response_to)
    cond = _el(root, SAML + "Conditions", NotBefore=instant(a.now - a.skew),
               NotOnOrAfter=instant(a.now + a.lifetime))
    _el(_el(cond, SAML + "AudienceRestriction"), SAML + "Audience", a.audience)
    st = _el(root, SAML + "AuthnStatement", AuthnInstant=instant(a.authn_instant),
             SessionIndex=a.session_index,
             SessionNotOnOrAfter=instant(a.session_not_on_or_after))
    _el(_el(st, SAML + "AuthnContext"), SAML + "AuthnContextClassRef", a.authn_context)
    if a.attributes:
        stmt = _el(root, SAML + "AttributeStatement")
        for attr in a.attributes:
            ae = _el(stmt, SAML + "Attribute", Name=attr.name, NameFormat=ATTR_URI,
                     FriendlyName=attr.friendly_name)
            for v in attr.values:
                _el(ae, SAML + "AttributeValue", v, **{XSI_TYPE: "xs:string"})
    return root


def _status(parent: etree._Element, top: str, sub: str | None, message: str | None) -> None:
    status = _el(parent, SAMLP + "Status")
    code = _el(status, SAMLP + "StatusCode", Value=top)
    if sub:
        _el(code, SAMLP + "StatusCode", Value=sub)
    if message:
        _el(status, SAMLP + "StatusMessage", message)


def response(*, id: str, issuer: str, now: float, destination: str,
             in_response_to: str | None, top: str = SUCCESS, sub: str | None = None,
             message: str | None = None, tag: str = "Response") -> etree._Element:
    """A ``<samlp:Response>`` or ``<samlp:LogoutResponse>`` (SAML Core §3.2.2, §3.7.2)."""
    root = etree.Element(SAMLP + tag, {k: v for k, v in {
        "ID": id, "Version": "2.0", "IssueInstant": instant(now), "Destination": destination,
        "InResponseTo": in_response_to}.items() if v is not None}, nsmap=NSMAP)
    _issuer(root, issuer)
    _status(root, top, sub, message)
    return root


def logout_request(*, id: str, issuer: str, now: float, destination: str, name_id: NameId,
                   session_index: str | None, not_on_or_after: float) -> etree._Element:
    """A ``<samlp:LogoutRequest>`` (SAML Core §3.7.1)."""
    root = etree.Element(SAMLP + "LogoutRequest", {
        "ID": id, "Version": "2.0", "IssueInstant": instant(now), "Destination": destination,
        "NotOnOrAfter": instant(not_on_or_after)}, nsmap=NSMAP)
    _issuer(root, issuer)
    _name_id(root, name_id)
    if session_index:
        _el(root, SAMLP + "SessionIndex", session_index)
    return root
