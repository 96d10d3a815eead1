"""The SAML side of the kit: the one service provider both IdPs trust (made afresh for every
run), its signed HTTP-Redirect AuthnRequests, and the full check of one Response."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

SP = "https://sp.peers.example/metadata"
ACS = "https://sp.peers.example/acs"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"


def self_signed(cn: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM): RSA-2048, SHA-256, valid for 30 days."""
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def certificate_b64(cert_pem: bytes) -> str:
    """The certificate's DER in base64, as metadata carries it."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode()


def pem_from_b64(b64: str) -> bytes:
    return f"-----BEGIN CERTIFICATE-----\n{b64.strip()}\n-----END CERTIFICATE-----\n".encode()


class ServiceProvider:
    """The bench SP: an RSA-2048 key made now, its metadata written for the project."""

    def __init__(self, folder: Path) -> None:
        key_pem, self.cert_pem = self_signed("peers-sp")
        key = serialization.load_pem_private_key(key_pem, None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key
        md = folder / "metadata"
        md.mkdir(parents=True, exist_ok=True)
        self.metadata_dir = md
        (md / "peers-sp.xml").write_text(f"""<md:EntityDescriptor
 xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
 entityID="{SP}">
 <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
  protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate
  >{certificate_b64(self.cert_pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
  </md:KeyDescriptor>
  <md:NameIDFormat>{PERSISTENT}</md:NameIDFormat>
  <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
   Location="{ACS}" index="0"/>
 </md:SPSSODescriptor>
</md:EntityDescriptor>
""")

    def authn_request(self, destination: str) -> tuple[str, str]:
        """(request ID, query string): a distinct AuthnRequest, deflated and signed for the
        HTTP-Redirect binding (SAML Bindings §3.4.4.1)."""
        rid = "_" + uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = (f'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{rid}" Version="2.0" '
               f'IssueInstant="{now}" Destination="{destination}" '
               f'AssertionConsumerServiceURL="{ACS}" '
               f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
               f'<saml:Issuer>{SP}</saml:Issuer><samlp:NameIDPolicy Format="{PERSISTENT}" '
               f'AllowCreate="true"/></samlp:AuthnRequest>')
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        raw = deflate.compress(xml.encode()) + deflate.flush()
        signed = urlencode([("SAMLRequest", base64.b64encode(raw).decode()),
                            ("RelayState", "peers"), ("SigAlg", RSA_SHA256)])
        sig = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return rid, signed + "&Signature=" + quote(base64.b64encode(sig).decode(), safe="")


def response_from_form(page: str) -> bytes:
    """The SAMLResponse of an HTTP-POST binding form (SAML Bindings §3.5.4)."""
    m = re.search(r'name="SAMLResponse"\s+value="([^"]+)"', page)
    if not m:
        raise SystemExit("no SAMLResponse form in: " + page[:600])
    return base64.b64decode(html.unescape(m.group(1)))


def check_response(xml: bytes, idp_cert_pem: bytes, request_id: str) -> dict[str, Any]:
    """Check one Response in full: every signature verified with python-xmlsec against the
    IdP's certificate, the Response and the Assertion both signed with RSA-SHA256, status
    Success, in answer to our request, for our SP and ACS; describe what it carries."""
    root = etree.fromstring(xml)
    xmlsec.tree.add_ids(root, ["ID"])
    signed = []
    for sig in root.iter(DS + "Signature"):
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(idp_cert_pem, xmlsec.constants.KeyDataFormatCertPem)
        ctx.verify(sig)  # raises when the signature does not verify
        method = sig.find(f"{DS}SignedInfo/{DS}SignatureMethod")
        parent = sig.getparent()
        assert method is not None and parent is not None
        signed.append((etree.QName(parent).localname, method.get("Algorithm")))
    problems = []
    if sorted(signed) != [("Assertion", RSA_SHA256), ("Response", RSA_SHA256)]:
        problems.append(f"signatures {signed}")
    status = root.find(f"{SAMLP}Status/{SAMLP}StatusCode")
    if status is None or status.get("Value") != SUCCESS:
        problems.append("status is not Success")
    if root.get("InResponseTo") != request_id:
        problems.append("InResponseTo is not our request")
    if root.get("Destination") != ACS:
        problems.append("Destination is not our ACS")
    audience = root.find(f".//{SAML}Audience")
    if audience is None or audience.text != SP:
        problems.append("Audience is not our SP")
    nameid = root.find(f".//{SAML}Subject/{SAML}NameID")
    if nameid is None or nameid.get("Format") != PERSISTENT:
        problems.append("NameID is not persistent")
    if problems:
        raise SystemExit("SAML response check failed: " + "; ".join(problems))
    return {
        "bytes": len(xml),
        "signatures verified": [f"{where} {alg.rsplit('#', 1)[-1]}" for where, alg in signed],
        "attributes": {a.get("Name"): [v.text for v in a.iter(f"{SAML}AttributeValue")]
                       for a in root.iter(f"{SAML}Attribute")},
    }
