"""Verification of one enveloped XML signature, in process (XML Signature Syntax and
Processing 1.1 §3.2 "Core Validation"; SAML Core §5.4 profile: one ``<Reference>`` to the
signed element's ``ID``, transforms exactly enveloped-signature then exclusive C14N).

The digest is computed over the exclusive canonical form of the signed element without its
``<Signature>`` (what the enveloped transform leaves), and those very bytes are returned: the
caller reads every value from them, so nothing outside the signed bytes can be read (signature
wrapping) and comments never split a value.  ``SignedInfo`` is canonicalized in its document
context and verified with the provider's public keys (RSA PKCS#1 v1.5 or ECDSA, SHA-2 only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from idp.sts.errors import invalid_token

DSIG = "http://www.w3.org/2000/09/xmldsig#"
DS = "{" + DSIG + "}"
EC_NS = {"ds": DSIG, "ec": "http://www.w3.org/2001/10/xml-exc-c14n#"}
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNATURE_ALGS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256()),
}
DIGEST_ALGS = {"http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
               "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
               "http://www.w3.org/2001/04/xmlenc#sha512": "sha512"}
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _refused(debug: str) -> Exception:
    return invalid_token("Invalid SAML response: signature refused", debug)


def _prefixes(method: etree._Element | None) -> list[str] | None:
    """``<ec:InclusiveNamespaces PrefixList="…">`` of an exclusive C14N method."""
    if method is None:
        return None
    inc = method.find("ec:InclusiveNamespaces", EC_NS)
    if inc is None:
        return None
    return [p if p != "#default" else "" for p in (inc.get("PrefixList") or "").split()] or None


def _c14n(el: etree._Element, prefixes: list[str] | None) -> bytes:
    out: bytes = etree.tostring(el, method="c14n", exclusive=True, with_comments=False,
                                inclusive_ns_prefixes=prefixes)
    return out


def _b64(text: str | None) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise _refused("bad base64 in the signature") from None


def verify_enveloped(signed: etree._Element, keys: Sequence[PublicKey]) -> bytes:
    """Check the enveloped signature of ``signed`` (a direct ``<ds:Signature>`` child with one
    ``<Reference URI="#ID">``); return the canonical bytes the digest covers.

    The element is modified (its signature removed): parse a fresh tree per call.
    """
    sig = signed.find(DS + "Signature")
    ident = signed.get("ID")
    if sig is None or not ident:
        raise _refused("no enveloped signature")
    info = sig.find(DS + "SignedInfo")
    if info is None:
        raise _refused("no SignedInfo")
    c14n = info.find(DS + "CanonicalizationMethod")
    method = info.find(DS + "SignatureMethod")
    refs = info.findall(DS + "Reference")
    if (c14n is None or c14n.get("Algorithm") != EXC_C14N or method is None
            or method.get("Algorithm") not in SIGNATURE_ALGS or len(refs) != 1
            or refs[0].get("URI") != "#" + ident):
        raise _refused("shape or algorithm")
    ref = refs[0]
    transforms = ref.findall("ds:Transforms/ds:Transform", EC_NS)
    if [t.get("Algorithm") for t in transforms] != [ENVELOPED, EXC_C14N]:
        raise _refused("transforms must be enveloped-signature then exclusive C14N")
    digest_method = ref.find(DS + "DigestMethod")
    algo = DIGEST_ALGS.get(digest_method.get("Algorithm", "") if digest_method is not None
                           else "")
    if algo is None:
        raise _refused("digest algorithm")
    expected = _b64(ref.findtext(DS + "DigestValue"))
    signature = _b64(sig.findtext(DS + "SignatureValue"))
    signed_info = _c14n(info, _prefixes(c14n))
    # the enveloped-signature transform: the Signature element goes, text around it stays
    tail = sig.tail
    prev = sig.getprevious()
    if tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            signed.text = (signed.text or "") + tail
    sig.tail = None
    signed.remove(sig)
    data = _c14n(signed, _prefixes(transforms[1]))
    if not hmac.compare_digest(hashlib.new(algo, data).digest(), expected):
        raise invalid_token("Invalid SAML response: the signature is invalid", "digest differs")
    kind, hash_alg = SIGNATURE_ALGS[method.get("Algorithm", "")]
    for key in keys:
        try:
            if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed_info, padding.PKCS1v15(), hash_alg)
                return data
            if kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
                half = len(signature) // 2
                der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                           int.from_bytes(signature[half:], "big"))
                key.verify(der, signed_info, ec.ECDSA(hash_alg))
                return data
        except InvalidSignature:
            continue
    raise invalid_token("Invalid SAML response: the signature is invalid", "no key verifies")
