"""Parsing untrusted XML (SAML messages, assertions, metadata) the one safe way.

No DTD, no entity declarations (XXE, billion laughs), no network, no huge trees, no processing
instructions.  Callers turn :class:`UnsafeXml` into their protocol's own error (a SAML status
page, an AWS ``InvalidIdentityToken``).
"""

from __future__ import annotations

from typing import Literal

from lxml import etree


class UnsafeXml(ValueError):
    """The document was refused: ``kind`` says why, ``debug`` is for the log only."""

    def __init__(self, kind: Literal["dtd", "malformed"], debug: str = "") -> None:
        self.kind = kind
        self.debug = debug
        super().__init__(kind)


def parser(*, remove_comments: bool) -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_pis=True,
                           remove_comments=remove_comments, collect_ids=False)


def parse_untrusted(data: bytes, *, remove_comments: bool) -> etree._Element:
    """Parse one document; DTDs and entity declarations are refused outright."""
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise UnsafeXml("dtd", "declaration in the bytes")
    try:
        root = etree.fromstring(data, parser(remove_comments=remove_comments))
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise UnsafeXml("malformed", str(exc)) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXml("dtd", "docinfo")
    return root
