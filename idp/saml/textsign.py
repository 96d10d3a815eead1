"""A signed ``<samlp:Response>`` with its signed ``<saml:Assertion>``, written as text that is
already in exclusive canonical form (Exclusive XML Canonicalization 1.0 §3; XML Signature 1.1
§3.1.1-3.1.2, §6.6.4 enveloped-signature transform; SAML Core §5.4).

The text is produced in the form exclusive C14N gives back for it: no XML declaration,
start and end tags for empty elements, attributes in canonical order, namespace declarations
on the elements that visibly use them (SAML Core §5.4.4 asks for exclusive C14N exactly so
that a signed element can be lifted out of its context), C14N escaping of text and attribute
values.  The digest of an element is then the SHA-256 of its text, with no tree, no
serialisation and no canonicalisation pass: a verifier that parses the document and
canonicalises the signed element gets the same bytes back (the tests check this against
lxml's C14N and python-xmlsec for awkward values).

The one declaration that C14N drops is ``xmlns:xs`` on the assertion (``xs:string`` appears
only inside ``xsi:type`` values, which C14N does not treat as visibly used, §3 of Exclusive
C14N): the document keeps it for SPs that resolve the QName; the digested text does not.

Used by :func:`idp.saml.issue.issue` for unencrypted assertions signed with the default
in-process backend; encrypted assertions go through the lxml tree and xmlsec.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.keys import SigningKey
from idp.saml.build import ATTR_URI, BEARER, AssertionData, instant
from idp.saml.crypto import EXC_C14N, RSA_SHA256
from idp.saml.errors import SUCCESS
from idp.saml.xml import NS

DS_NS = NS["ds"]
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

# XML 1.0 §2.2 Char: what may appear in a document at all (lxml refuses the rest, so do we)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", '"': "&quot;", "\t": "&#x9;",
                       "\n": "&#xA;", "\r": "&#xD;"})


def _checked(value: str) -> str:
    if _NOT_XML.search(value):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes "
                         "or control characters")
    return value


def text(value: str) -> str:
    """Character content as C14N writes it (Canonical XML 1.0 §2.3: & < > and CR escaped).
    Printable ASCII without markup characters, most values, is written as it is."""
    if (value.isascii() and value.isprintable() and "&" not in value and "<" not in value
            and ">" not in value):
        return value
    return _checked(value).translate(_TEXT)


def attr_value(value: str) -> str:
    """An attribute value as C14N writes it (& < " TAB LF CR escaped)."""
    if value.isascii() and value.isprintable() and "&" not in value and "<" not in value \
            and '"' not in value:
        return value
    return _checked(value).translate(_ATTR)


def attrs(values: Mapping[str, str | None]) -> str:
    """Unqualified attributes as C14N writes them: sorted by name (they have no namespace
    URI, which sorts first), escaped by :func:`attr_value`; ``None`` leaves one out."""
    out = ""
    for k, v in sorted(values.items()):
        if v is not None:
            out += f' {k}="{attr_value(v)}"'
    return out


def _digest(canonical: str) -> str:
    return base64.b64encode(hashlib.sha256(canonical.encode()).digest()).decode()


def _signature(ref_id: str, canonical: str, key: SigningKey, cert_b64: str) -> str:
    """The ``<ds:Signature>`` over the element whose canonical text (without this signature,
    as the enveloped-signature transform removes it) is ``canonical``."""
    signed_info = (
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>'
        f'<ds:SignatureMethod Algorithm="{RSA_SHA256}"></ds:SignatureMethod>'
        f'<ds:Reference URI="#{ref_id}"><ds:Transforms>'
        f'<ds:Transform Algorithm="{_ENVELOPED}"></ds:Transform>'
        f'<ds:Transform Algorithm="{EXC_C14N}"></ds:Transform></ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{_SHA256}"></ds:DigestMethod>'
        f"<ds:DigestValue>{_digest(canonical)}</ds:DigestValue></ds:Reference>")
    # SignedInfo canonicalised on its own is the apex: it declares ds itself (§3.1.2)
    private = key.private_key
    if not isinstance(private, rsa.RSAPrivateKey):
        raise TypeError("XML signatures here are RSA-SHA256")
    value = private.sign(f'<ds:SignedInfo xmlns:ds="{DS_NS}">{signed_info}</ds:SignedInfo>'
                         .encode(), padding.PKCS1v15(), hashes.SHA256())
    return (f'<ds:Signature xmlns:ds="{DS_NS}"><ds:SignedInfo>{signed_info}</ds:SignedInfo>'
            f"<ds:SignatureValue>{base64.b64encode(value).decode()}</ds:SignatureValue>"
            f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>"
            f"</ds:X509Data></ds:KeyInfo></ds:Signature>")


def _opt(name: str, value: str | None) -> str:
    return "" if value is None else f' {name}="{attr_value(value)}"'


def assertion_body(a: AssertionData) -> str:
    """Everything after ``<saml:Issuer>``: Subject, Conditions, AuthnStatement and the
    AttributeStatement (SAML Core §2.3.3 order; Profiles §4.1.4.2 bearer confirmation).
    Attributes are written in C14N order by hand (names sorted), as :func:`attrs` would."""
    n = a.name_id
    until = instant(a.now + a.lifetime)
    parts = [
        f'<saml:Subject><saml:NameID Format="{attr_value(n.format)}"',
        _opt("NameQualifier", n.name_qualifier), _opt("SPNameQualifier", n.sp_name_qualifier),
        f'>{text(n.value)}</saml:NameID><saml:SubjectConfirmation Method="{BEARER}">'
        "<saml:SubjectConfirmationData", _opt("InResponseTo", a.in_response_to),
        f' NotOnOrAfter="{until}" Recipient="{attr_value(a.recipient)}">'
        "</saml:SubjectConfirmationData></saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="{instant(a.now - a.skew)}" NotOnOrAfter="{until}">'
        f"<saml:AudienceRestriction><saml:Audience>{text(a.audience)}</saml:Audience>"
        "</saml:AudienceRestriction></saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{instant(a.authn_instant)}" '
        f'SessionIndex="{attr_value(a.session_index)}" '
        f'SessionNotOnOrAfter="{instant(a.session_not_on_or_after)}">'
        f"<saml:AuthnContext><saml:AuthnContextClassRef>{text(a.authn_context)}"
        "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>",
    ]
    if a.attributes:
        parts.append("<saml:AttributeStatement>")
        value_open = (f'<saml:AttributeValue xmlns:xsi="{NS["xsi"]}" '
                      'xsi:type="xs:string">')
        for attr in a.attributes:
            parts += ["<saml:Attribute", _opt("FriendlyName", attr.friendly_name),
                      f' Name="{attr_value(attr.name)}" NameFormat="{ATTR_URI}">']
            for v in attr.values:
                parts += [value_open, text(v), "</saml:AttributeValue>"]
            parts.append("</saml:Attribute>")
        parts.append("</saml:AttributeStatement>")
    return "".join(parts)


def signed_response(a: AssertionData, *, response_id: str, destination: str,
                    key: SigningKey, cert_b64: str) -> bytes:
    """The document: a Response (signed) holding the Assertion (signed), SAML Core §3.3.3 and
    §5.4.1 (each signature right after its element's Issuer)."""
    saml = NS["saml"]
    issuer = f'<saml:Issuer xmlns:saml="{saml}">{text(a.issuer)}</saml:Issuer>'
    a_attrs = attrs({"ID": a.id, "IssueInstant": instant(a.now), "Version": "2.0"})
    a_open = f'<saml:Assertion xmlns:saml="{saml}"{a_attrs}>'
    a_open_doc = f'<saml:Assertion xmlns:saml="{saml}" xmlns:xs="{NS["xs"]}"{a_attrs}>'
    a_inner_issuer = f"<saml:Issuer>{text(a.issuer)}</saml:Issuer>"
    body = assertion_body(a) + "</saml:Assertion>"
    a_sig = _signature(a.id, a_open + a_inner_issuer + body, key, cert_b64)
    assertion_c14n = a_open + a_inner_issuer + a_sig + body
    assertion_doc = a_open_doc + a_inner_issuer + a_sig + body

    r_open = (f'<samlp:Response xmlns:samlp="{NS["samlp"]}"' + attrs({
        "Destination": destination, "ID": response_id, "InResponseTo": a.in_response_to,
        "IssueInstant": instant(a.now), "Version": "2.0"}) + ">")
    status = (f'<samlp:Status><samlp:StatusCode Value="{SUCCESS}"></samlp:StatusCode>'
              "</samlp:Status>")
    r_sig = _signature(response_id, r_open + issuer + status + assertion_c14n
                       + "</samlp:Response>", key, cert_b64)
    return (r_open + issuer + r_sig + status + assertion_doc + "</samlp:Response>").encode()
