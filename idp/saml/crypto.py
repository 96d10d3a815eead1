"""XML signatures and encryption in process (XML Signature 1.1, XML Encryption 1.1).

:class:`XmlsecCrypto` signs and verifies with python-xmlsec and keys loaded once (a signature
is a few hundred microseconds).  :class:`Xmlsec1Crypto` signs through pysaml2's default
backend (one ``xmlsec1`` subprocess with temporary files per signature): kept only as the
benchmark baseline.  Signatures are enveloped, exclusive C14N, RSA-SHA256 (SAML Core §5.4).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from typing import Any, Protocol

import xmlsec as _xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from idp.keys import SigningKey
from idp.saml.errors import SamlSignatureError
from idp.saml.xml import DS, NS, parse_xml

xmlsec: Any = _xmlsec  # its bundled stubs lack the constants used here

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
# Algorithms accepted on incoming signatures: SHA-1 is refused (XML Signature 1.1 §6.1).
SIGNATURE_ALGS = {RSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
                  "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
                  "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"}
DIGEST_ALGS = {"http://www.w3.org/2001/04/xmlenc#sha256",
               "http://www.w3.org/2001/04/xmldsig-more#sha384",
               "http://www.w3.org/2001/04/xmlenc#sha512"}
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
TRANSFORMS = {"http://www.w3.org/2000/09/xmldsig#enveloped-signature", EXC_C14N}


_CERTS: dict[str, str] = {}


def cert_b64(key: SigningKey) -> str:
    """``key.cert_b64``, encoded once per key rather than once per signature."""
    value = _CERTS.get(key.kid)
    if value is None:
        value = _CERTS[key.kid] = key.cert_b64
    return value


def signature_template(element: etree._Element, key: SigningKey) -> etree._Element:
    """Insert an empty enveloped signature right after ``<saml:Issuer>`` (SAML Core §5.4.1)."""
    sig = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N,
                                 xmlsec.Transform.RSA_SHA256, ns="ds")
    ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256,
                                        uri="#" + element.get("ID", ""))
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    info = xmlsec.template.ensure_key_info(sig)
    x509_data = xmlsec.template.add_x509_data(info)
    cert = etree.SubElement(x509_data, DS + "X509Certificate")
    cert.text = cert_b64(key)
    element.insert(1, sig)
    return sig


class XmlCrypto(Protocol):
    """Sign an element of a document (by its ``ID``); returns the root (maybe re-parsed)."""

    name: str

    def sign(self, root: etree._Element, element: etree._Element,
             key: SigningKey) -> etree._Element: ...


class XmlsecCrypto:
    """python-xmlsec with keys parsed once and cached per key ID / certificate."""

    name = "xmlsec-inprocess"

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _signing_key(self, key: SigningKey) -> Any:
        k = self._keys.get("kid:" + key.kid)
        if k is None:
            k = xmlsec.Key.from_memory(key.private_pem(), xmlsec.KeyFormat.PEM, None)
            with self._lock:
                self._keys["kid:" + key.kid] = k
        return k

    def _cert_key(self, pem: str) -> Any:
        k = self._keys.get(pem)
        if k is None:
            k = xmlsec.Key.from_memory(pem.encode(), xmlsec.KeyFormat.CERT_PEM, None)
            with self._lock:
                self._keys[pem] = k
        return k

    def sign(self, root: etree._Element, element: etree._Element,
             key: SigningKey) -> etree._Element:
        sig = signature_template(element, key)
        xmlsec.tree.add_ids(element, ["ID"])
        ctx = xmlsec.SignatureContext()
        ctx.key = self._signing_key(key)
        ctx.sign(sig)
        return root

    def verify(self, element: etree._Element, certs: list[str]) -> None:
        """Verify the enveloped signature of ``element`` itself with one of ``certs``.

        Only a signature that is a direct child of ``element`` and references exactly its
        ``ID`` counts (signature wrapping, SAML Core §5.4.2); SHA-1 is refused.
        """
        sig = element.find(DS + "Signature")
        if sig is None:
            raise SamlSignatureError(debug="no enveloped signature")
        ident = element.get("ID")
        refs = sig.findall("ds:SignedInfo/ds:Reference", NS)
        method = sig.find("ds:SignedInfo/ds:SignatureMethod", NS)
        c14n = sig.find("ds:SignedInfo/ds:CanonicalizationMethod", NS)
        if (not ident or len(refs) != 1 or refs[0].get("URI") != "#" + ident
                or method is None or method.get("Algorithm") not in SIGNATURE_ALGS
                or c14n is None or c14n.get("Algorithm") != EXC_C14N):
            raise SamlSignatureError(debug="signature shape or algorithm refused")
        digest = refs[0].find("ds:DigestMethod", NS)
        if digest is None or digest.get("Algorithm") not in DIGEST_ALGS:
            raise SamlSignatureError(debug="digest algorithm refused")
        for t in refs[0].findall("ds:Transforms/ds:Transform", NS):
            if t.get("Algorithm") not in TRANSFORMS:
                raise SamlSignatureError(debug=f"transform {t.get('Algorithm')} refused")
        root = element.getroottree().getroot()
        ids = [e for e in root.iter() if isinstance(e.tag, str) and e.get("ID") == ident]
        if len(ids) != 1:
            raise SamlSignatureError(debug="duplicate ID")
        xmlsec.tree.add_ids(element, ["ID"])
        for pem in certs:
            ctx = xmlsec.SignatureContext()
            ctx.key = self._cert_key(pem)
            try:
                ctx.verify(sig)
                return
            except xmlsec.Error:
                continue
        raise SamlSignatureError(debug="no certificate verifies the signature")

    def encrypt_assertion(self, wrapper: etree._Element, assertion: etree._Element,
                          cert_pem: str) -> None:
        """Replace ``assertion`` (child of ``<saml:EncryptedAssertion>``) by its encryption:
        AES-256-GCM content, key transported with RSA-OAEP (XML Encryption 1.1 §5.2.4, §5.5.2)."""
        enc = xmlsec.template.encrypted_data_create(
            wrapper, xmlsec.Transform.AES256_GCM, type=xmlsec.EncryptionType.ELEMENT, ns="xenc")
        xmlsec.template.encrypted_data_ensure_cipher_value(enc)
        info = xmlsec.template.encrypted_data_ensure_key_info(enc, ns="ds")
        ek = xmlsec.template.add_encrypted_key(info, xmlsec.Transform.RSA_OAEP)
        xmlsec.template.encrypted_data_ensure_cipher_value(ek)
        manager = xmlsec.KeysManager()
        manager.add_key(self._cert_key(cert_pem))
        ctx = xmlsec.EncryptionContext(manager)
        ctx.key = xmlsec.Key.generate(xmlsec.KeyData.AES, 256, xmlsec.KeyDataType.SESSION)
        ctx.encrypt_xml(enc, assertion)


class LxmlCrypto:
    """Enveloped signatures computed directly: lxml exclusive C14N, SHA-256 and the loaded
    ``cryptography`` key (XML Signature 1.1 §3.1.1, §3.1.2) -- no per-signature key setup."""

    name = "lxml-cryptography-inprocess"

    def __init__(self, *, text: bool = True) -> None:
        self.text = text
        """Whether responses are written as canonical text (:mod:`idp.saml.textsign`) rather
        than as an lxml tree signed by :meth:`sign` (kept for error responses, encrypted
        assertions and as the benchmark's comparison)."""

    def sign(self, root: etree._Element, element: etree._Element,
             key: SigningKey) -> etree._Element:
        if not isinstance(key.private_key, rsa.RSAPrivateKey):
            raise TypeError("XML signatures here are RSA-SHA256")
        sig = signature_template(element, key)
        # enveloped-signature transform: digest the element without its Signature
        parent, index = sig.getparent(), element.index(sig)
        element.remove(sig)
        digest = hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True,
                                               with_comments=False)).digest()
        element.insert(index, sig)
        assert parent is element
        sig.find("ds:SignedInfo/ds:Reference/ds:DigestValue", NS).text = (  # type: ignore[union-attr]
            base64.b64encode(digest).decode())
        signed_info = sig.find("ds:SignedInfo", NS)
        data = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
        value = key.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        sig.find("ds:SignatureValue", NS).text = base64.b64encode(value).decode()  # type: ignore[union-attr]
        return root


class Xmlsec1Crypto:
    """pysaml2's default backend: an ``xmlsec1`` subprocess per signature (baseline only)."""

    name = "pysaml2-xmlsec1"

    def __init__(self, key_dir: Path) -> None:
        from saml2.sigver import CryptoBackendXmlSec1, get_xmlsec_binary

        self._backend = CryptoBackendXmlSec1(get_xmlsec_binary())
        self._dir = key_dir
        self._files: dict[str, str] = {}

    def _key_file(self, key: SigningKey) -> str:
        path = self._files.get(key.kid)
        if path is None:
            p = self._dir / f"{key.kid}.key.pem"
            if not p.exists():
                p.write_bytes(key.private_pem())
                p.chmod(0o600)
            path = self._files[key.kid] = str(p)
        return path

    def sign(self, root: etree._Element, element: etree._Element,
             key: SigningKey) -> etree._Element:
        signature_template(element, key)
        node = etree.QName(element).namespace + ":" + etree.QName(element).localname
        signed = self._backend.sign_statement(etree.tostring(root).decode(), node,
                                              self._key_file(key), element.get("ID"))
        return parse_xml(signed.encode() if isinstance(signed, str) else signed, 1 << 24)


def cert_pem(cert_b64: str) -> str:
    """A ``<ds:X509Certificate>`` value to PEM, checking that it parses (raises ValueError)."""
    der = base64.b64decode("".join(cert_b64.split()), validate=True)
    cert = x509.load_der_x509_certificate(der)
    return cert.public_bytes(serialization.Encoding.PEM).decode()
