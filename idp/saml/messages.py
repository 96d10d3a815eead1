"""Read incoming SAML protocol messages and check their signatures (SAML Core §3.4, §3.7;
SAML Bindings §3.4.4.1 for the signature over the HTTP-Redirect query string)."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from lxml import etree

from idp.saml.build import parse_instant
from idp.saml.crypto import RSA_SHA256
from idp.saml.errors import SamlError, SamlSignatureError
from idp.saml.xml import NS, SAML, SAMLP, bool_attr, text

_HASHES: dict[str, hashes.HashAlgorithm] = {
    RSA_SHA256: hashes.SHA256(),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384(),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512(),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256(),
}

_ISSUER = SAML + "Issuer"
_NAMEID_POLICY = SAMLP + "NameIDPolicy"
_REQUESTED_AUTHN_CONTEXT = SAMLP + "RequestedAuthnContext"


@dataclass(frozen=True)
class Binding:
    """A message as it arrived: parameters plus the raw query (for Redirect signatures)."""

    redirect: bool
    params: Mapping[str, str]
    raw_query: str = ""


@dataclass(frozen=True)
class AuthnRequest:
    id: str
    issuer: str
    issue_instant: float
    destination: str | None
    acs_url: str | None
    acs_index: int | None
    protocol_binding: str | None
    force_authn: bool
    is_passive: bool
    name_id_format: str | None
    sp_name_qualifier: str | None
    authn_contexts: tuple[str, ...]
    comparison: str


@dataclass(frozen=True)
class LogoutRequest:
    id: str
    issuer: str
    issue_instant: float
    name_id: str | None
    session_indexes: tuple[str, ...]


@dataclass(frozen=True)
class LogoutResponse:
    id: str
    issuer: str
    in_response_to: str | None
    status: str


def _children(root: etree._Element) -> dict[object, etree._Element]:
    """The first child element of each tag (what ``root.find(tag)`` returns), in one pass."""
    out: dict[object, etree._Element] = {}
    for child in root:
        out.setdefault(child.tag, child)
    return out


def _common(root: etree._Element, tag: str,
            children: dict[object, etree._Element] | None = None) -> tuple[str, str, float]:
    if root.tag != SAMLP + tag:
        raise SamlError(f"expected a `{tag}`", debug=str(root.tag))
    ident = root.get("ID") or ""
    if root.get("Version") != "2.0" or not ident or len(ident) > 256:
        raise SamlError(f"the `{tag}` has no valid ID or Version")
    issuer = text(children.get(_ISSUER) if children is not None
                  else root.find("saml:Issuer", NS))
    if not issuer:
        raise SamlError(f"the `{tag}` has no Issuer")
    issued = parse_instant(root.get("IssueInstant"))
    if issued is None:
        raise SamlError(f"the `{tag}` has no valid IssueInstant")
    return ident, issuer, issued


def read_authn_request(root: etree._Element) -> AuthnRequest:
    """``<samlp:AuthnRequest>`` (SAML Core §3.4.1)."""
    children = _children(root)
    ident, issuer, issued = _common(root, "AuthnRequest", children)
    policy = children.get(_NAMEID_POLICY)
    rac = children.get(_REQUESTED_AUTHN_CONTEXT)
    index = root.get("AssertionConsumerServiceIndex")
    try:
        acs_index = int(index) if index is not None else None
    except ValueError as exc:
        raise SamlError("AssertionConsumerServiceIndex is not a number") from exc
    comparison = rac.get("Comparison", "exact") if rac is not None else "exact"
    if comparison not in ("exact", "minimum", "maximum", "better"):
        raise SamlError("unknown RequestedAuthnContext Comparison")
    return AuthnRequest(
        id=ident, issuer=issuer, issue_instant=issued, destination=root.get("Destination"),
        acs_url=root.get("AssertionConsumerServiceURL"), acs_index=acs_index,
        protocol_binding=root.get("ProtocolBinding"),
        force_authn=bool_attr(root, "ForceAuthn"), is_passive=bool_attr(root, "IsPassive"),
        name_id_format=policy.get("Format") if policy is not None else None,
        sp_name_qualifier=policy.get("SPNameQualifier") if policy is not None else None,
        authn_contexts=tuple(t for t in (text(e) for e in rac.findall(
            "saml:AuthnContextClassRef", NS)) if t) if rac is not None else (),
        comparison=comparison)


def read_logout_request(root: etree._Element) -> LogoutRequest:
    """``<samlp:LogoutRequest>`` (SAML Core §3.7.1)."""
    ident, issuer, issued = _common(root, "LogoutRequest")
    return LogoutRequest(ident, issuer, issued, text(root.find("saml:NameID", NS)),
                         tuple(t for t in (text(e) for e in root.findall(
                             "samlp:SessionIndex", NS)) if t))


def read_logout_response(root: etree._Element) -> LogoutResponse:
    """``<samlp:LogoutResponse>`` (SAML Core §3.7.2)."""
    ident, issuer, _ = _common(root, "LogoutResponse")
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    return LogoutResponse(ident, issuer, root.get("InResponseTo"),
                          code.get("Value", "") if code is not None else "")


def _raw_params(raw_query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        if name in out:
            raise SamlError(f"`{name}` appears twice in the query")
        out[name] = value
    return out


@functools.lru_cache(maxsize=1024)
def _public_key(pem: str) -> PublicKeyTypes:
    """The public key of a metadata certificate, parsed once."""
    return x509.load_pem_x509_certificate(pem.encode()).public_key()


_SIGALGS_RAW = {quote_plus(name): name for name in _HASHES}


def _unquote_b64(value: str) -> str:
    """``unquote_plus`` for a URL-encoded base64 value (RFC 3986 §2.1).  The usual case, no
    ``+`` and only the escapes ``%2B``, ``%2F`` and ``%3D``, is decoded by three replacements
    (which cannot create a ``%``); anything else goes through ``unquote_plus`` itself."""
    if "+" not in value:
        decoded = value.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
        if "%" not in decoded:
            return decoded
    return unquote_plus(value)


def verify_redirect(raw_query: str, kind: str, certs: tuple[str, ...]) -> bool:
    """Verify the HTTP-Redirect signature (SAML Bindings §3.4.4.1) over the parameters exactly
    as they were URL-encoded; ``False`` when the query carries none."""
    raw = _raw_params(raw_query)
    if "Signature" not in raw and "SigAlg" not in raw:
        return False
    raw_alg = raw.get("SigAlg", "")
    sigalg = _SIGALGS_RAW.get(raw_alg) or unquote_plus(raw_alg)
    algorithm = _HASHES.get(sigalg)
    if algorithm is None:
        raise SamlSignatureError(debug=f"signature algorithm `{sigalg}` refused")
    signed = "&".join(f"{n}={raw[n]}" for n in (kind, "RelayState", "SigAlg") if n in raw)
    try:
        signature = base64.b64decode(_unquote_b64(raw.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SamlSignatureError(debug="signature is not base64") from exc
    for pem in certs:
        key = _public_key(pem)
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed.encode(), padding.PKCS1v15(), algorithm)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, signed.encode(), ec.ECDSA(algorithm))
            else:
                continue
            return True
        except InvalidSignature:
            continue
    raise SamlSignatureError(debug="no certificate verifies the redirect signature")


def sign_redirect(params: list[tuple[str, str]], key: PrivateKeyTypes) -> str:
    """A signed HTTP-Redirect query string (SAML Bindings §3.4.4.1), RSA-SHA256."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SamlError("the SAML signing key must be RSA", status=500)
    parts = [f"{n}={quote_plus(v)}" for n, v in params] + [f"SigAlg={quote_plus(RSA_SHA256)}"]
    signed = "&".join(parts)
    sig = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signed + "&Signature=" + quote_plus(base64.b64encode(sig).decode())
