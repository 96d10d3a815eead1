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

import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping

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


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def _digest(canonical: Iterable[bytes]) -> str:
    """DigestValue: SHA-256 of the canonical octets (given in pieces), base64 (XML Signature
    1.1 §4.4.3.3)."""
    h = hashlib.sha256()
    for piece in canonical:
        h.update(piece)
    return _b64(h.digest())


_SIGNED_INFO_HEAD = (
    f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>'
    f'<ds:SignatureMethod Algorithm="{RSA_SHA256}"></ds:SignatureMethod>')
_REFERENCE_TAIL = (
    f'"><ds:Transforms><ds:Transform Algorithm="{_ENVELOPED}"></ds:Transform>'
    f'<ds:Transform Algorithm="{EXC_C14N}"></ds:Transform></ds:Transforms>'
    f'<ds:DigestMethod Algorithm="{_SHA256}"></ds:DigestMethod><ds:DigestValue>')


def _signature(ref_id: str, canonical: Iterable[bytes], key: SigningKey, cert_b64: str) -> bytes:
    """The ``<ds:Signature>`` (XML Signature 1.1 §4.1) over the element whose canonical
    octets (without this signature, as the enveloped-signature transform of §6.6.4 removes
    it) are the concatenation of ``canonical``; ``ref_id`` is written as it is (escaped by
    the caller)."""
    signed_info = (f'{_SIGNED_INFO_HEAD}<ds:Reference URI="#{ref_id}{_REFERENCE_TAIL}'
                   f"{_digest(canonical)}</ds:DigestValue></ds:Reference>")
    # SignedInfo canonicalised on its own is the apex: it declares ds itself (XML Signature
    # 1.1 §3.1.2 step 2, Exclusive C14N 1.0 §3)
    private = key.private_key
    if not isinstance(private, rsa.RSAPrivateKey):
        raise TypeError("XML signatures here are RSA-SHA256")
    value = private.sign(f'<ds:SignedInfo xmlns:ds="{DS_NS}">{signed_info}</ds:SignedInfo>'
                         .encode(), padding.PKCS1v15(), hashes.SHA256())
    return (f'<ds:Signature xmlns:ds="{DS_NS}"><ds:SignedInfo>{signed_info}</ds:SignedInfo>'
            f"<ds:SignatureValue>{_b64(value)}</ds:SignatureValue>"
            f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>"
            f"</ds:X509Data></ds:KeyInfo></ds:Signature>").encode()


_VALUE_OPEN = f'<saml:AttributeValue xmlns:xsi="{NS["xsi"]}" xsi:type="xs:string">'


def assertion_body(a: AssertionData) -> str:
    """Everything after ``<saml:Issuer>``: Subject, Conditions, AuthnStatement and the
    AttributeStatement (SAML Core §2.3.3 order; Profiles §4.1.4.2 bearer confirmation).
    Attributes are written in C14N order by hand (names sorted), as :func:`attrs` would;
    every value goes through :func:`text` or :func:`attr_value`."""
    t, av = text, attr_value
    n = a.name_id
    until = instant(a.now + a.lifetime)
    nq, spnq, irt = n.name_qualifier, n.sp_name_qualifier, a.in_response_to
    parts = [
        f'<saml:Subject><saml:NameID Format="{av(n.format)}"',
        "" if nq is None else f' NameQualifier="{av(nq)}"',
        "" if spnq is None else f' SPNameQualifier="{av(spnq)}"',
        f'>{t(n.value)}</saml:NameID><saml:SubjectConfirmation Method="{BEARER}">'
        "<saml:SubjectConfirmationData",
        "" if irt is None else f' InResponseTo="{av(irt)}"',
        f' NotOnOrAfter="{until}" Recipient="{av(a.recipient)}">'
        "</saml:SubjectConfirmationData></saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="{instant(a.now - a.skew)}" NotOnOrAfter="{until}">'
        f"<saml:AudienceRestriction><saml:Audience>{t(a.audience)}</saml:Audience>"
        "</saml:AudienceRestriction></saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{instant(a.authn_instant)}" '
        f'SessionIndex="{av(a.session_index)}" '
        f'SessionNotOnOrAfter="{instant(a.session_not_on_or_after)}">'
        f"<saml:AuthnContext><saml:AuthnContextClassRef>{t(a.authn_context)}"
        "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>",
    ]
    if a.attributes:
        parts.append("<saml:AttributeStatement>")
        for attr in a.attributes:
            friendly = attr.friendly_name
            parts.append("<saml:Attribute" + (
                "" if friendly is None else f' FriendlyName="{av(friendly)}"')
                + f' Name="{av(attr.name)}" NameFormat="{ATTR_URI}">')
            for v in attr.values:
                parts.append(f"{_VALUE_OPEN}{t(v)}</saml:AttributeValue>")
            parts.append("</saml:Attribute>")
        parts.append("</saml:AttributeStatement>")
    return "".join(parts)


def signed_response(a: AssertionData, *, response_id: str, destination: str,
                    key: SigningKey, cert_b64: str) -> bytes:
    """The document: a Response (signed) holding the Assertion (signed), SAML Core §3.3.3 and
    §5.4.1 (each signature right after its element's Issuer).  Attributes of the Response
    and the Assertion are written in C14N order (Exclusive C14N 1.0 §3: by name, as they
    have no namespace).  Each digest is taken over the pieces of the element's canonical
    text, the assertion's body being encoded once."""
    t, av = text, attr_value
    saml = NS["saml"]
    issuer_text = t(a.issuer)
    now = instant(a.now)
    a_attrs = f' ID="{av(a.id)}" IssueInstant="{now}" Version="2.0">'
    a_open = f'<saml:Assertion xmlns:saml="{saml}"{a_attrs}'.encode()
    a_open_doc = f'<saml:Assertion xmlns:saml="{saml}" xmlns:xs="{NS["xs"]}"{a_attrs}'.encode()
    a_issuer = f"<saml:Issuer>{issuer_text}</saml:Issuer>".encode()
    body = (assertion_body(a) + "</saml:Assertion>").encode()
    a_sig = _signature(av(a.id), (a_open, a_issuer, body), key, cert_b64)

    irt = a.in_response_to
    r_open = (f'<samlp:Response xmlns:samlp="{NS["samlp"]}" Destination="{av(destination)}"'
              f' ID="{av(response_id)}"'
              + ("" if irt is None else f' InResponseTo="{av(irt)}"')
              + f' IssueInstant="{now}" Version="2.0">').encode()
    r_issuer = f'<saml:Issuer xmlns:saml="{saml}">{issuer_text}</saml:Issuer>'.encode()
    r_sig = _signature(av(response_id), (r_open, r_issuer, _STATUS, a_open, a_issuer, a_sig,
                                         body, _RESPONSE_END), key, cert_b64)
    return b"".join((r_open, r_issuer, r_sig, _STATUS, a_open_doc, a_issuer, a_sig, body,
                     _RESPONSE_END))


_STATUS = (f'<samlp:Status><samlp:StatusCode Value="{SUCCESS}"></samlp:StatusCode>'
           "</samlp:Status>").encode()
_RESPONSE_END = b"</samlp:Response>"
