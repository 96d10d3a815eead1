"""Messages a service provider sends, written and signed here for the attack tests (SAML Core
§3.4.1, §3.7; SAML Bindings §3.4.4.1 for HTTP-Redirect, §3.5.4 for HTTP-POST), and a reader
of the IdP's HTTP-Redirect answers that checks their signature on its own (not with the IdP's
code)."""

from __future__ import annotations

import base64
import time
import uuid
import zlib
from urllib.parse import parse_qsl, quote_plus, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
NS = {"samlp": SAMLP, "saml": SAML}


def instant(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_id() -> str:
    return "_" + uuid.uuid4().hex


def _destination(destination: str | None) -> str:
    return f' Destination="{destination}"' if destination is not None else ""


def authn_request(issuer: str, destination: str | None, *, ident: str | None = None) -> bytes:
    return (f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" '
            f'ID="{ident or new_id()}" Version="2.0" IssueInstant="{instant(time.time())}"'
            f'{_destination(destination)}><saml:Issuer>{issuer}</saml:Issuer>'
            f'</samlp:AuthnRequest>').encode()


def logout_request(issuer: str, destination: str | None, *, ident: str | None = None,
                   issued: float | None = None, name_id: str = "someone",
                   attrs: str = "") -> bytes:
    return (f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" '
            f'ID="{ident or new_id()}" Version="2.0" '
            f'IssueInstant="{instant(time.time() if issued is None else issued)}"'
            f'{_destination(destination)}{attrs}><saml:Issuer>{issuer}</saml:Issuer>'
            f'<saml:NameID>{name_id}</saml:NameID></samlp:LogoutRequest>').encode()


def logout_response(issuer: str, destination: str | None, in_response_to: str, *,
                    ident: str | None = None, issued: float | None = None) -> bytes:
    return (f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" '
            f'ID="{ident or new_id()}" Version="2.0" '
            f'IssueInstant="{instant(time.time() if issued is None else issued)}"'
            f'{_destination(destination)} InResponseTo="{in_response_to}">'
            f'<saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode '
            f'Value="{STATUS}Success"/></samlp:Status></samlp:LogoutResponse>').encode()


def deflate_b64(xml: bytes) -> str:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(c.compress(xml) + c.flush()).decode()


def _private(key_pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def redirect_query(param: str, xml: bytes, key_pem: str | None,
                   relay: str | None = None) -> str:
    """The query string of an HTTP-Redirect message, signed over ``param=…&RelayState=…&
    SigAlg=…`` as encoded when a key is given (SAML Bindings §3.4.4.1)."""
    parts = [f"{param}={quote_plus(deflate_b64(xml))}"]
    if relay is not None:
        parts.append(f"RelayState={quote_plus(relay)}")
    if key_pem is None:
        return "&".join(parts)
    parts.append(f"SigAlg={quote_plus(RSA_SHA256)}")
    signed = "&".join(parts)
    sig = _private(key_pem).sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signed + "&Signature=" + quote_plus(base64.b64encode(sig).decode())


def post_fields(param: str, xml: bytes, key_pem: str | None, cert_pem: str = "",
                relay: str | None = None) -> list[tuple[str, str]]:
    """The form fields of an HTTP-POST message, enveloped-signed when a key is given."""
    signed = OneLogin_Saml2_Utils.add_sign(xml, key_pem, cert_pem) if key_pem else xml
    fields = [(param, base64.b64encode(signed).decode())]
    if relay is not None:
        fields.append(("RelayState", relay))
    return fields


def get_exact(url: str, session: requests.Session | None = None) -> requests.Response:
    """GET ``url`` byte for byte: ``requests`` would otherwise decode escapes of unreserved
    characters (``SAML%52equest`` becomes ``SAMLRequest``) before sending."""
    prepared = requests.Request("GET", url).prepare()
    prepared.url = url
    return (session or requests.Session()).send(prepared, timeout=10, allow_redirects=False)


def read_redirect(location: str, cert_pem: str) -> tuple[etree._Element, dict[str, str]]:
    """An HTTP-Redirect message the IdP sent: its XML and its parameters, after checking the
    RSA-SHA256 signature over the parameters as they appear in ``location``."""
    query = urlsplit(location).query
    raw = dict(part.split("=", 1) for part in query.split("&"))
    params = dict(parse_qsl(query))
    param = "SAMLResponse" if "SAMLResponse" in raw else "SAMLRequest"
    assert params["SigAlg"] == RSA_SHA256
    signed = "&".join(f"{n}={raw[n]}" for n in (param, "RelayState", "SigAlg") if n in raw)
    key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(params["Signature"]), signed.encode(), padding.PKCS1v15(),
               hashes.SHA256())
    xml = zlib.decompress(base64.b64decode(params[param]), -15)
    return etree.fromstring(xml), params


def status_codes(root: etree._Element) -> list[str]:
    return [c.get("Value", "") for c in root.iterfind(".//samlp:StatusCode", NS)]
