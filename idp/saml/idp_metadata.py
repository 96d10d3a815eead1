"""The IdP's own metadata (SAML Metadata §2.4.3 ``IDPSSODescriptor``): every RSA signing
certificate in the ``next`` and ``active`` states, so SPs can follow a rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from idp.saml.build import instant
from idp.saml.metadata import NAMEID_FORMATS, POST, PROTOCOL, REDIRECT
from idp.saml.xml import DS, MD, NS

if TYPE_CHECKING:
    from idp.saml.core import SamlIdp

VALID_FOR = 7 * 86400


def idp_metadata(idp: SamlIdp) -> bytes:
    now = idp.d.clock()
    root = etree.Element(MD + "EntityDescriptor", {
        "entityID": idp.entity_id, "ID": idp.d.id_gen(),
        "validUntil": instant(now + VALID_FOR), "cacheDuration": "PT1H"},
        nsmap={"md": NS["md"], "ds": NS["ds"]})
    desc = etree.SubElement(root, MD + "IDPSSODescriptor", {
        "protocolSupportEnumeration": PROTOCOL,
        "WantAuthnRequestsSigned": "true" if idp.config.want_authn_requests_signed else "false"})
    for k in idp.d.keys.published(("next", "active")):
        if k.alg != "RS256":
            continue
        kd = etree.SubElement(desc, MD + "KeyDescriptor", use="signing")
        info = etree.SubElement(kd, DS + "KeyInfo")
        etree.SubElement(info, DS + "KeyName").text = k.kid
        data = etree.SubElement(info, DS + "X509Data")
        etree.SubElement(data, DS + "X509Certificate").text = k.cert_b64
    for binding in (REDIRECT, POST):
        etree.SubElement(desc, MD + "SingleLogoutService", Binding=binding,
                         Location=idp.slo_url)
    for fmt in NAMEID_FORMATS:
        etree.SubElement(desc, MD + "NameIDFormat").text = fmt
    for binding in (REDIRECT, POST):
        etree.SubElement(desc, MD + "SingleSignOnService", Binding=binding,
                         Location=idp.sso_url)
    if idp.config.sign_metadata:
        root = idp.sign(root, root)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out
