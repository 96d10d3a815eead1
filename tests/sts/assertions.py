"""Build AWS-style SAML responses for the STS tests, signed in process with python-xmlsec.

``build_response`` returns the XML tree so tests can tamper with it before ``encode``.
"""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import xmlsec
from lxml import etree

from idp.keys import SigningKey

P = "urn:oasis:names:tc:SAML:2.0:protocol"
A = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
AWS = "https://aws.amazon.com/SAML/Attributes/"
ACCOUNT = "111122223333"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/demo-idp"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Spec:
    issuer: str  # the IdP base URL; entity ID is issuer + /saml/metadata
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    roles: list[str] = field(default_factory=lambda: [f"{role('Developer')},{PROVIDER}"])
    session_name: str = "alice"
    subject: str = "alice@example.org"
    audience: str = "urn:amazon:webservices"
    recipient: str | None = None  # default: issuer + /federation/saml
    lifetime: int = 300
    session_duration: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    transitive: list[str] = field(default_factory=list)
    source_identity: str | None = None
    assertion_id: str = field(default_factory=lambda: "_" + uuid.uuid4().hex)
    session_end: int | None = None  # seconds from now: AuthnStatement SessionNotOnOrAfter


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
         ) -> etree._Element:
    el = etree.SubElement(parent, tag, **attrs)
    if text is not None:
        el.text = text
    return el


def build_assertion(s: Spec) -> etree._Element:
    nb, na = s.now - timedelta(seconds=30), s.now + timedelta(seconds=s.lifetime)
    a = etree.Element(f"{{{A}}}Assertion", nsmap={"saml": A},
                      ID=s.assertion_id, Version="2.0", IssueInstant=iso(s.now))
    _sub(a, f"{{{A}}}Issuer", s.issuer + "/saml/metadata")
    subj = _sub(a, f"{{{A}}}Subject")
    _sub(subj, f"{{{A}}}NameID", s.subject,
         Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    sc = _sub(subj, f"{{{A}}}SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
    _sub(sc, f"{{{A}}}SubjectConfirmationData", NotOnOrAfter=iso(na),
         Recipient=s.recipient or s.issuer + "/federation/saml")
    cond = _sub(a, f"{{{A}}}Conditions", NotBefore=iso(nb), NotOnOrAfter=iso(na))
    ar = _sub(cond, f"{{{A}}}AudienceRestriction")
    _sub(ar, f"{{{A}}}Audience", s.audience)
    authn = _sub(a, f"{{{A}}}AuthnStatement", AuthnInstant=iso(s.now))
    if s.session_end is not None:
        authn.set("SessionNotOnOrAfter", iso(s.now + timedelta(seconds=s.session_end)))
    ctx = _sub(authn, f"{{{A}}}AuthnContext")
    _sub(ctx, f"{{{A}}}AuthnContextClassRef",
         "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    st = _sub(a, f"{{{A}}}AttributeStatement")
    attrs: list[tuple[str, list[str]]] = [(AWS + "Role", s.roles),
                                          (AWS + "RoleSessionName", [s.session_name])]
    if s.session_duration is not None:
        attrs.append((AWS + "SessionDuration", [str(s.session_duration)]))
    for k, v in s.tags.items():
        attrs.append((AWS + "PrincipalTag:" + k, [v]))
    if s.transitive:
        attrs.append((AWS + "TransitiveTagKeys", s.transitive))
    if s.source_identity:
        attrs.append((AWS + "SourceIdentity", [s.source_identity]))
    for name, values in attrs:
        at = _sub(st, f"{{{A}}}Attribute", Name=name)
        for v in values:
            _sub(at, f"{{{A}}}AttributeValue", v)
    return a


def build_response(s: Spec, assertion: etree._Element | None = None) -> etree._Element:
    r = etree.Element(f"{{{P}}}Response", nsmap={"samlp": P, "saml": A},
                      ID="_" + uuid.uuid4().hex, Version="2.0", IssueInstant=iso(s.now),
                      Destination=s.issuer + "/federation/saml")
    _sub(r, f"{{{A}}}Issuer", s.issuer + "/saml/metadata")
    status = _sub(r, f"{{{P}}}Status")
    _sub(status, f"{{{P}}}StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success")
    r.append(assertion if assertion is not None else build_assertion(s))
    return r


_KEYS: dict[tuple[str, str], xmlsec.Key] = {}  # by kid and certificate: test keys share kids


def sign(element: etree._Element, key: SigningKey) -> etree._Element:
    """Enveloped signature after the Issuer, exclusive C14N, RSA- or ECDSA-SHA256 (SAML Core
    §5.4)."""
    method = xmlsec.Transform.ECDSA_SHA256 if key.alg == "ES256" else xmlsec.Transform.RSA_SHA256
    sig = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, method, ns="ds")
    ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256,
                                        uri="#" + element.get("ID", ""))
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    info = xmlsec.template.ensure_key_info(sig)
    x509 = xmlsec.template.add_x509_data(info)
    etree.SubElement(x509, f"{{{DS}}}X509Certificate").text = key.cert_b64
    element.insert(1, sig)
    xmlsec.tree.add_ids(element, ["ID"])
    ctx = xmlsec.SignatureContext()
    k = _KEYS.get((key.kid, key.cert_b64))
    if k is None:
        k = _KEYS[key.kid, key.cert_b64] = xmlsec.Key.from_memory(key.private_pem(),
                                                                 xmlsec.KeyFormat.PEM)
    ctx.key = k
    ctx.sign(sig)
    return element


def signed_response(s: Spec, key: SigningKey) -> etree._Element:
    """A response whose assertion is signed (the AWS-style default)."""
    a = sign(build_assertion(s), key)
    return build_response(s, a)


def encode(root: etree._Element) -> str:
    return base64.b64encode(etree.tostring(root)).decode()


def clone(el: etree._Element) -> etree._Element:
    return copy.deepcopy(el)
