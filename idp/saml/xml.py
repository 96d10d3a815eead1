"""Safe decoding and parsing of SAML messages (SAML Bindings §3.4.4 and §3.5.4).

Every incoming message is bounded before it is parsed: base64 text, inflated size (a DEFLATE
bomb stops at the limit), and the XML itself is parsed by lxml with no DTD, no entity
resolution, no network and no huge trees; a document with a ``<!DOCTYPE`` is refused outright
(billion laughs, external entities: SAML messages never carry a DTD, SAML Core §1.3).
"""

from __future__ import annotations

import base64
import binascii
import zlib

from lxml import etree

from idp.saml.errors import SamlError
from idp.xmlsafe import UnsafeXml, parse_untrusted

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xs": "http://www.w3.org/2001/XMLSchema",
}
SAMLP = f"{{{NS['samlp']}}}"
SAML = f"{{{NS['saml']}}}"
MD = f"{{{NS['md']}}}"
DS = f"{{{NS['ds']}}}"


def _refuse(description: str, code: str, debug: str = "", status: int = 400) -> SamlError:
    return SamlError(description, code=code, status=status, debug=debug)


def parse_xml(data: bytes, limit: int) -> etree._Element:
    """Parse one XML document safely; :class:`SamlError` for anything else."""
    if len(data) > limit:
        raise _refuse("the SAML message is too large", "message_too_large",
                      f"{len(data)} bytes > {limit}", 413)
    try:
        return parse_untrusted(data, remove_comments=True)
    except UnsafeXml as exc:
        if exc.kind == "dtd":
            raise _refuse("the SAML message must not contain a DTD", "dtd_forbidden",
                          exc.debug) from None
        raise _refuse("the SAML message is not well-formed XML", "malformed_xml",
                      exc.debug) from None


def b64decode(text: str, limit: int) -> bytes:
    """Strict base64 (whitespace allowed, as in HTML form posts)."""
    compact = "".join(text.split())
    if len(compact) > limit * 4 // 3 + 4:
        raise _refuse("the SAML message is too large", "message_too_large",
                      f"{len(compact)} base64 characters", 413)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SamlError("the SAML message is not valid base64", code="malformed_base64",
                        debug=str(exc)) from exc


def inflate(data: bytes, limit: int) -> bytes:
    """Raw DEFLATE (RFC 1951) as the HTTP-Redirect binding uses it (SAML Bindings §3.4.4.1),
    stopping at ``limit`` bytes: a bomb is refused, not inflated."""
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise SamlError("the SAML message is not valid DEFLATE data", code="malformed_deflate",
                        debug=str(exc)) from exc
    if len(out) > limit or d.unconsumed_tail:
        raise _refuse("the SAML message is too large", "message_too_large", "inflated", 413)
    return out


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def decode_message(value: str, *, redirect: bool, limit: int) -> etree._Element:
    """A ``SAMLRequest``/``SAMLResponse`` parameter to its XML root."""
    raw = b64decode(value, limit)
    return parse_xml(inflate(raw, limit) if redirect else raw, limit)


def encode_redirect(xml: bytes) -> str:
    return base64.b64encode(deflate(xml)).decode()


def encode_post(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


def text(el: etree._Element | None) -> str | None:
    return None if el is None or el.text is None else el.text.strip()


def bool_attr(el: etree._Element, name: str) -> bool:
    value = (el.get(name) or "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise SamlError(f"`{name}` is not an xs:boolean")
    return value in ("true", "1")
