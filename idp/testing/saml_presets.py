"""SAML failure presets: responses a service provider must refuse, each modelling one attack
or one mistake (SAML Core §2.5, §3.2, §5; SAML Profiles §4.1.4.3; "On Breaking SAML: Be
Whoever You Want to Be", Somorovsky et al., USENIX Security 2012, for XSW1-8).

Each preset starts from the genuine assertion the IdP would issue (:mod:`idp.testing.saml_mint`)
and breaks exactly one thing; everything else stays as a correct SP expects it, so that an SP
accepting a preset has the one flaw the preset names.  Signatures are made with the IdP's own
key by :class:`idp.saml.crypto.LxmlCrypto` unless the preset is about the key.

``sts`` says whether an AWS-style consumer (this IdP's ``AssumeRoleWithSAML``, like AWS's)
must refuse the preset too: AWS accepts unsolicited responses (no ``InResponseTo`` to check)
and a signature on the Response alone, so three presets are for SP tests only.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from idp.keys import SigningKey
from idp.saml import build
from idp.saml.crypto import LxmlCrypto
from idp.saml.errors import RESPONDER, STATUS
from idp.saml.xml import DS, SAML, SAMLP
from idp.testing.errors import KitError
from idp.testing.saml_mint import Minted, sign

AUTHN_FAILED = STATUS + "AuthnFailed"
EVIL_HOST = "https://evil.example"
_SIGNER = LxmlCrypto(text=False)


@dataclass(frozen=True)
class Preset:
    name: str
    attack: str
    make: Callable[[Minted], bytes]
    sts: bool = True


def _with(m: Minted, **changes: object) -> Minted:
    return dataclasses.replace(m, data=dataclasses.replace(m.data, **changes))  # type: ignore[arg-type]


def _key(m: Minted) -> SigningKey:
    return m.idp.d.keys.active("RS256")


def _tree(m: Minted) -> etree._Element:
    """The Response with its assertion, nothing signed yet."""
    root = build.response(id=m.idp.d.id_gen(), issuer=m.idp.entity_id, now=m.data.now,
                          destination=m.destination, in_response_to=m.data.in_response_to)
    root.append(build.assertion(m.data))
    return root


def _assertion(root: etree._Element) -> etree._Element:
    a = root.find(SAML + "Assertion")
    assert a is not None
    return a


def _signed(m: Minted, *, assertion: bool = True, response: bool = True,
            key: SigningKey | None = None) -> etree._Element:
    root = _tree(m)
    k = key or _key(m)
    if assertion:
        _SIGNER.sign(root, _assertion(root), k)
    if response:
        _SIGNER.sign(root, root, k)
    return root


def _bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root))


def _evil(original: etree._Element) -> etree._Element:
    """A copy of an element claiming someone else, with a new ID and no signature."""
    evil = copy.deepcopy(original)
    for sig in evil.findall(DS + "Signature"):
        evil.remove(sig)
    evil.set("ID", "_evil" + secrets.token_hex(16))
    for nid in evil.iter(SAML + "NameID"):
        nid.text = "attacker-chosen-admin"
    return evil


def _unsigned_copy(element: etree._Element) -> etree._Element:
    out = copy.deepcopy(element)
    for sig in out.findall(DS + "Signature"):
        out.remove(sig)
    return out


# -- time, audience, recipient, request --------------------------------------------------------

def expired(m: Minted) -> bytes:
    """Issued an hour ago: every NotOnOrAfter has passed (replay of an old response, SAML
    Core §2.5.1.2, Profiles §4.1.4.3)."""
    return sign(_with(m, now=m.data.now - 3600))


def not_yet_valid(m: Minted) -> bytes:
    """Issued an hour ahead: NotBefore is in the future (an IdP clock far off, or a response
    minted for later use, SAML Core §2.5.1.2)."""
    return sign(_with(m, now=m.data.now + 3600))


def wrong_audience(m: Minted) -> bytes:
    """Audience is another SP: an assertion issued to one SP replayed at another (SAML Core
    §2.5.1.4)."""
    return sign(_with(m, audience=EVIL_HOST + "/sp"))


def wrong_recipient(m: Minted) -> bytes:
    """Recipient and Destination name another ACS: a response captured at another endpoint
    (SAML Profiles §4.1.4.3, Core §3.2.2)."""
    return sign(_with(dataclasses.replace(m, destination=EVIL_HOST + "/acs"),
                      recipient=EVIL_HOST + "/acs"))


def wrong_in_response_to(m: Minted) -> bytes:
    """InResponseTo names a request this SP never sent: a response to someone else's request
    (SAML Profiles §4.1.4.3)."""
    return sign(_with(m, in_response_to="_not-your-request-" + secrets.token_hex(8)))


def missing_in_response_to(m: Minted) -> bytes:
    """No InResponseTo although the SP sent a request: an unsolicited response slipped into
    an SP-initiated login (login CSRF, SAML Profiles §4.1.5)."""
    return sign(_with(m, in_response_to=None))


# -- signatures -------------------------------------------------------------------------------

def unsigned_response(m: Minted) -> bytes:
    """Nothing signed at all: a response forged by anyone (SAML Core §5.1)."""
    return _bytes(_signed(m, assertion=False, response=False))


def unsigned_assertion(m: Minted) -> bytes:
    """Response signed, assertion not: refused by an SP that requires signed assertions
    (SAML Metadata ``WantAssertionsSigned``)."""
    return _bytes(_signed(m, assertion=False, response=True))


def unknown_key(m: Minted) -> bytes:
    """Signed, with a key of the attacker's own (its certificate in KeyInfo): an SP that
    trusts the certificate in the message instead of the IdP's metadata is fooled."""
    return _bytes(_signed(m, key=_stranger()))


@lru_cache(maxsize=1)
def _stranger() -> SigningKey:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-idp")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return SigningKey(kid="stranger", alg="RS256", state="active", created=now.isoformat(),
                      private_key=key, certificate=cert)


def _stranger_cert_pem() -> str:
    return _stranger().cert_pem


# -- signature wrapping (Somorovsky et al. 2012, §4; SAML Raider's XSW1-8) ---------------------

def xsw1(m: Minted) -> bytes:
    """The Response signature kept, the signed Response moved inside it; the outer Response
    is new and carries an evil assertion."""
    root = _signed(m, assertion=False)
    sig = root.find(DS + "Signature")
    assert sig is not None
    evil = _evil(root)
    evil_sig = evil.find(DS + "Signature")
    if evil_sig is None:
        evil.insert(1, copy.deepcopy(sig))
        evil_sig = evil.find(DS + "Signature")
    assert evil_sig is not None
    evil_sig.append(_unsigned_copy(root))
    return _bytes(evil)


def xsw2(m: Minted) -> bytes:
    """As XSW1, but the signed Response sits before the signature (a detached signature)."""
    root = _signed(m, assertion=False)
    sig = root.find(DS + "Signature")
    assert sig is not None
    evil = _evil(root)
    evil.insert(1, _unsigned_copy(root))
    evil.insert(2, copy.deepcopy(sig))
    return _bytes(evil)


def _assertion_signed(m: Minted) -> tuple[etree._Element, etree._Element]:
    root = _signed(m, response=False)
    return root, _assertion(root)


def xsw3(m: Minted) -> bytes:
    """An evil assertion inserted before the signed one: an SP that verifies one and reads
    the first is fooled."""
    root, signed = _assertion_signed(m)
    signed.addprevious(_evil(signed))
    return _bytes(root)


def xsw4(m: Minted) -> bytes:
    """An evil assertion in place of the signed one, which it wraps as a child."""
    root, signed = _assertion_signed(m)
    evil = _evil(signed)
    signed.addprevious(evil)
    evil.append(signed)
    return _bytes(root)


def xsw5(m: Minted) -> bytes:
    """The signed assertion altered (signature kept), an unaltered unsigned copy appended to
    the Response so that the reference still resolves to content that digests."""
    root, signed = _assertion_signed(m)
    original = _unsigned_copy(signed)
    for nid in signed.iter(SAML + "NameID"):
        nid.text = "attacker-chosen-admin"
    signed.set("ID", "_evil" + secrets.token_hex(16))
    root.append(original)
    return _bytes(root)


def xsw6(m: Minted) -> bytes:
    """As XSW5, but the unaltered copy sits inside the altered assertion's signature."""
    root, signed = _assertion_signed(m)
    original = _unsigned_copy(signed)
    for nid in signed.iter(SAML + "NameID"):
        nid.text = "attacker-chosen-admin"
    signed.set("ID", "_evil" + secrets.token_hex(16))
    sig = signed.find(DS + "Signature")
    assert sig is not None
    sig.append(original)
    return _bytes(root)


def xsw7(m: Minted) -> bytes:
    """The signed assertion hidden in ``<samlp:Extensions>``; an evil assertion is the
    visible one."""
    root, signed = _assertion_signed(m)
    evil = _evil(signed)
    ext = etree.Element(SAMLP + "Extensions")
    root.find(SAML + "Issuer").addnext(ext)  # type: ignore[union-attr]
    signed.addprevious(evil)
    ext.append(signed)
    return _bytes(root)


def xsw8(m: Minted) -> bytes:
    """The evil assertion carries the original signature, with the unaltered assertion
    (unsigned) inside a ``<ds:Object>`` of that signature."""
    root, signed = _assertion_signed(m)
    evil = _evil(signed)
    sig = signed.find(DS + "Signature")
    assert sig is not None
    moved = copy.deepcopy(sig)
    obj = etree.SubElement(moved, DS + "Object")
    obj.append(_unsigned_copy(signed))
    evil.insert(1, moved)
    signed.addprevious(evil)
    root.remove(signed)
    return _bytes(root)


# -- content ----------------------------------------------------------------------------------

def comment_in_name_id(m: Minted) -> bytes:
    """A comment inside the NameID after signing (exclusive C14N drops comments, so both
    signatures still verify): an SP that reads only the text before the comment takes the
    account named by that prefix (CVE-2017-11427 and its siblings)."""
    root = _signed(m)
    nid = _assertion(root).find(f"{SAML}Subject/{SAML}NameID")
    assert nid is not None and nid.text
    value = nid.text
    cut = max(1, len(value) // 2)
    nid.text = value[:cut]
    comment = etree.Comment("")
    comment.tail = value[cut:]
    nid.append(comment)
    return _bytes(root)


def _status(m: Minted, sub: str | None, message: str) -> bytes:
    root = build.response(id=m.idp.d.id_gen(), issuer=m.idp.entity_id, now=m.data.now,
                          destination=m.destination, in_response_to=m.data.in_response_to,
                          top=RESPONDER, sub=sub, message=message)
    return _bytes(_SIGNER.sign(root, root, _key(m)))


def status_authn_failed(m: Minted) -> bytes:
    """A signed Response whose status is Responder/AuthnFailed and that has no assertion:
    an SP that looks for a NameID without checking the status (SAML Core §3.2.2.2)."""
    return _status(m, AUTHN_FAILED, "authentication failed")


def status_responder(m: Minted) -> bytes:
    """A signed Response whose top-level status is Responder (the IdP failed)."""
    return _status(m, None, "the identity provider could not answer")


def encrypted_for_wrong_key(m: Minted) -> bytes:
    """The signed assertion encrypted for a certificate that is not the SP's: the SP cannot
    decrypt it and must refuse rather than fall back to anything (XML Encryption 1.1)."""
    root = _signed(m, response=False)
    signed = _assertion(root)
    wrapper = etree.Element(SAML + "EncryptedAssertion")
    signed.addprevious(wrapper)
    wrapper.append(signed)
    m.idp.xmlsec.encrypt_assertion(wrapper, signed, _stranger_cert_pem())
    return _bytes(_SIGNER.sign(root, root, _key(m)))


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("expired", "replay of an old response", expired),
    Preset("not_yet_valid", "response used before its validity window", not_yet_valid),
    Preset("wrong_audience", "assertion for another SP replayed here", wrong_audience),
    Preset("wrong_recipient", "response captured at another ACS", wrong_recipient),
    Preset("wrong_in_response_to", "response to someone else's request",
           wrong_in_response_to, sts=False),
    Preset("missing_in_response_to", "unsolicited response in an SP-initiated login",
           missing_in_response_to, sts=False),
    Preset("unsigned_response", "forged response, nothing signed", unsigned_response),
    Preset("unsigned_assertion", "assertion without its own signature", unsigned_assertion,
           sts=False),
    Preset("unknown_key", "signed by a key that is not the IdP's", unknown_key),
    Preset("xsw1", "signature wrapping: signed Response inside its signature", xsw1),
    Preset("xsw2", "signature wrapping: detached Response signature", xsw2),
    Preset("xsw3", "signature wrapping: evil assertion before the signed one", xsw3),
    Preset("xsw4", "signature wrapping: evil assertion wrapping the signed one", xsw4),
    Preset("xsw5", "signature wrapping: altered assertion, original appended", xsw5),
    Preset("xsw6", "signature wrapping: altered assertion, original in its signature", xsw6),
    Preset("xsw7", "signature wrapping: signed assertion hidden in Extensions", xsw7),
    Preset("xsw8", "signature wrapping: original in a ds:Object of the evil one", xsw8),
    Preset("comment_in_name_id", "NameID truncation by an XML comment", comment_in_name_id),
    Preset("status_authn_failed", "error status read as a login", status_authn_failed),
    Preset("status_responder", "IdP error status read as a login", status_responder),
    Preset("encrypted_for_wrong_key", "assertion encrypted for someone else",
           encrypted_for_wrong_key),
)}


def apply(name: str, m: Minted) -> bytes:
    preset = PRESETS.get(name)
    if preset is None:
        raise KitError(f"unknown SAML preset `{name}` ({', '.join(PRESETS)})")
    return preset.make(m)
