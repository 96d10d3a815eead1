"""Read incoming SAML protocol messages and check their signatures (SAML Core §3.4, §3.7;
SAML Bindings §3.4.4.1 for the signature over the HTTP-Redirect query string)."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote_plus, unquote_plus, unquote_to_bytes

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


PROTOCOL_PARAMS = ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature")
_PROTOCOL = frozenset(PROTOCOL_PARAMS)
_FOLDED = {name.lower(): name for name in PROTOCOL_PARAMS}


def _repeated(name: str) -> SamlError:
    return SamlError(f"`{name}` appears more than once", code="repeated_parameter")


def protocol_name(name: str) -> str | None:
    """The protocol parameter a (decoded) name is, ``None`` for any other parameter; a name
    that differs from one only in case is refused (names are case-sensitive, SAML Bindings
    §3.4.4.1, and another reader might not think so)."""
    if name in _PROTOCOL:
        return name
    folded = _FOLDED.get(name.lower())
    if folded is not None:
        raise SamlError(f"`{name[:40]}` is not `{folded}`", code="ambiguous_parameter")
    return None


@dataclass(frozen=True)
class Binding:
    """A message as it arrived: its protocol parameters decoded (``params``) and, for
    HTTP-Redirect, the same parameters as they were URL-encoded (``encoded``: what the
    signature covers).  :meth:`query` and :meth:`form` read each parameter once, so the
    values checked and the values processed are the same ones."""

    redirect: bool
    params: Mapping[str, str]
    encoded: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def query(cls, raw_query: str) -> Binding:
        """HTTP-Redirect (SAML Bindings §3.4.4): the raw query string (one character per
        octet, e.g. decoded as latin-1) split once; each name is decoded before it is looked
        at, and a protocol parameter that appears twice is refused."""
        params: dict[str, str] = {}
        encoded: dict[str, str] = {}
        for part in raw_query.split("&"):
            raw_name, _, value = part.partition("=")
            name = protocol_name(_unquote(raw_name))
            if name is None:
                continue
            if name in encoded:
                raise _repeated(name)
            encoded[name] = value
            params[name] = _DECODE.get(name, _unquote)(value)
        return cls(True, params, encoded)

    @classmethod
    def form(cls, fields: Iterable[tuple[str, str]]) -> Binding:
        """HTTP-POST (SAML Bindings §3.5.4): form fields as decoded by the web layer, every
        one of them (a repeated protocol field is refused)."""
        params: dict[str, str] = {}
        for raw_name, value in fields:
            name = protocol_name(raw_name)
            if name is None:
                continue
            if name in params:
                raise _repeated(name)
            params[name] = value
        return cls(False, params)


class Message(Protocol):
    """What every incoming request or response has (SAML Core §3.2.1, §3.2.2)."""

    @property
    def id(self) -> str: ...
    @property
    def issue_instant(self) -> float: ...
    @property
    def destination(self) -> str | None: ...


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
    destination: str | None
    not_on_or_after: float | None
    name_id: str | None
    session_indexes: tuple[str, ...]


@dataclass(frozen=True)
class LogoutResponse:
    id: str
    issuer: str
    issue_instant: float
    destination: str | None
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
    expires = root.get("NotOnOrAfter")
    not_on_or_after = parse_instant(expires)
    if expires is not None and not_on_or_after is None:
        raise SamlError("the `LogoutRequest` has no valid NotOnOrAfter")
    return LogoutRequest(ident, issuer, issued, root.get("Destination"), not_on_or_after,
                         text(root.find("saml:NameID", NS)),
                         tuple(t for t in (text(e) for e in root.findall(
                             "samlp:SessionIndex", NS)) if t))


def read_logout_response(root: etree._Element) -> LogoutResponse:
    """``<samlp:LogoutResponse>`` (SAML Core §3.7.2)."""
    ident, issuer, issued = _common(root, "LogoutResponse")
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    return LogoutResponse(ident, issuer, issued, root.get("Destination"),
                          root.get("InResponseTo"),
                          code.get("Value", "") if code is not None else "")


@functools.lru_cache(maxsize=1024)
def _public_key(pem: str) -> PublicKeyTypes:
    """The public key of a metadata certificate, parsed once."""
    return x509.load_pem_x509_certificate(pem.encode()).public_key()


_SIGALGS_RAW = {quote_plus(name): name for name in _HASHES}


def _unquote(value: str) -> str:
    """``application/x-www-form-urlencoded`` decoding of one name or value (``+`` is a space,
    escapes are UTF-8) from text holding one character per octet; plain ASCII as it is."""
    if "%" not in value and "+" not in value and value.isascii():
        return value
    return unquote_to_bytes(value.replace("+", " ").encode("latin-1", "replace")).decode(
        "utf-8", "replace")


def _unquote_b64(value: str) -> str:
    """``unquote_plus`` for a URL-encoded base64 value (RFC 3986 §2.1).  The usual case, no
    ``+`` and only the escapes ``%2B``, ``%2F`` and ``%3D``, is decoded by three replacements
    (which cannot create a ``%``); anything else goes through ``unquote_plus`` itself."""
    if "+" not in value:
        decoded = value.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
        if "%" not in decoded:
            return decoded
    return unquote_plus(value)


def _unquote_sigalg(value: str) -> str:
    return _SIGALGS_RAW.get(value) or _unquote(value)


_DECODE: dict[str, Callable[[str], str]] = {
    "SAMLRequest": _unquote_b64, "SAMLResponse": _unquote_b64, "Signature": _unquote_b64,
    "SigAlg": _unquote_sigalg}


def verify_redirect(msg: Binding, kind: str, certs: tuple[str, ...]) -> bool:
    """Verify the HTTP-Redirect signature (SAML Bindings §3.4.4.1) over the octets of the
    parameters exactly as they were URL-encoded -- the same parameters whose decoded values
    are then processed; ``False`` when the query carries no signature."""
    raw = msg.encoded
    if "Signature" not in raw and "SigAlg" not in raw:
        return False
    sigalg = msg.params.get("SigAlg", "")
    algorithm = _HASHES.get(sigalg)
    if algorithm is None:
        raise SamlSignatureError(debug=f"signature algorithm `{sigalg[:100]}` refused")
    signed = "&".join(f"{n}={raw[n]}" for n in (kind, "RelayState", "SigAlg") if n in raw
                      ).encode("latin-1", "replace")
    try:
        signature = base64.b64decode(msg.params.get("Signature", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SamlSignatureError(debug="signature is not base64") from exc
    for pem in certs:
        key = _public_key(pem)
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), algorithm)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, signed, ec.ECDSA(algorithm))
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
