"""The text-written signed Response (idp/saml/textsign.py) against lxml's exclusive C14N and
python-xmlsec: the digested text must be exactly what a verifier canonicalises."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from idp.keys import KeyRing, SigningKey, init_keys
from idp.saml import build, textsign
from idp.saml.build import AssertionData, Attribute, NameId
from idp.saml.crypto import LxmlCrypto, XmlsecCrypto, cert_b64
from idp.saml.errors import SamlSignatureError
from idp.saml.xml import NS, SAML

XS_DECL = f' xmlns:xs="{NS["xs"]}"'.encode()
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"

AWKWARD = [
    pytest.param("plain", id="plain"),
    pytest.param('a&b<c>d"e\'f', id="markup-characters"),
    pytest.param("tab\there\nnewline\r\ncarriage", id="whitespace-controls"),
    pytest.param("Zoë 東京 \U0001f511", id="non-ascii"),
    pytest.param("]]> <!-- x --> &amp; &#x41;", id="markup-lookalikes"),
    pytest.param("  leading and trailing  ", id="surrounding-spaces"),
]


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    folder = tmp_path_factory.mktemp("textsign-keys")
    init_keys(folder)
    return KeyRing.load(folder).active("RS256")


def data(value: str, *, in_response_to: str | None = "_req1", **over: Any) -> AssertionData:
    fields: dict[str, Any] = dict(
        id="_a1", issuer=f"https://idp.example/{value}", now=1_800_000_000.0,
        name_id=NameId(value, PERSISTENT, f"sp:{value}", None), audience=f"https://sp/{value}",
        recipient=f"https://sp/acs?x={value}", in_response_to=in_response_to, lifetime=300,
        skew=60, authn_instant=1_799_999_000.0, session_index=f"_s{value}",
        session_not_on_or_after=1_800_003_600.0,
        authn_context="urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
        attributes=(Attribute(f"urn:x:{value}", (value, "second", value), value),
                    Attribute("https://aws.amazon.com/SAML/Attributes/Role",
                              ("arn:aws:iam::111122223333:role/A,arn:aws:iam::111122223333:"
                               "saml-provider/idp",)),
                    Attribute("urn:no-friendly-name", (value,))))
    fields.update(over)
    return AssertionData(**fields)


def document(key: SigningKey, a: AssertionData) -> bytes:
    return textsign.signed_response(a, response_id="_r1", destination="https://sp/acs",
                                    key=key, cert_b64=cert_b64(key))


@pytest.mark.parametrize("value", AWKWARD)
def test_document_is_already_in_exclusive_canonical_form(key: SigningKey, value: str) -> None:
    """Parse and canonicalise the whole Response: the same bytes come back, less the one
    declaration exclusive C14N drops (xmlns:xs, used only inside xsi:type values)."""
    doc = document(key, data(value))
    assert doc.count(XS_DECL) == 1
    root = etree.fromstring(doc)
    assert etree.tostring(root, method="c14n", exclusive=True) == doc.replace(XS_DECL, b"")


@pytest.mark.parametrize("value", AWKWARD)
def test_both_signatures_verify_with_xmlsec_and_values_round_trip(key: SigningKey,
                                                                  value: str) -> None:
    root = etree.fromstring(document(key, data(value)))
    XmlsecCrypto().verify(root, [key.cert_pem])
    assertion = root.find(SAML + "Assertion")
    assert assertion is not None
    XmlsecCrypto().verify(assertion, [key.cert_pem])
    assert assertion.findtext("saml:Subject/saml:NameID", namespaces=NS) == value
    values = [v.text for v in assertion.iterfind(".//saml:AttributeValue", NS)]
    assert values[:3] == [value, "second", value]
    first = assertion.find(".//saml:Attribute", NS)
    assert first is not None and first.get("FriendlyName") == value
    sc = assertion.find(".//saml:SubjectConfirmationData", NS)
    assert sc is not None and sc.get("Recipient") == f"https://sp/acs?x={value}"


def test_states_exactly_what_the_lxml_tree_states(key: SigningKey) -> None:
    """Same data through the lxml builder and LxmlCrypto: every element but the signatures
    canonicalises to the same bytes."""
    a = data('x&y<"z">\t')
    tree = build.response(id="_r1", issuer=a.issuer, now=a.now, destination="https://sp/acs",
                          in_response_to=a.in_response_to)
    tree.append(build.assertion(a))
    signer = LxmlCrypto()
    tree = signer.sign(tree, tree.find(SAML + "Assertion"), key)  # type: ignore[arg-type]
    tree = signer.sign(tree, tree, key)
    ours = etree.fromstring(document(key, a))
    for root in (tree, ours):
        for sig in root.iterfind(".//ds:Signature", NS):
            sig.getparent().remove(sig)  # type: ignore[union-attr]

    def c14n(el: etree._Element) -> bytes:
        return bytes(etree.tostring(el, method="c14n", exclusive=True))

    assert c14n(ours) == c14n(tree)
    assert c14n(ours.find(SAML + "Assertion")) == c14n(tree.find(SAML + "Assertion"))  # type: ignore[arg-type]


def test_idp_initiated_response_has_no_in_response_to(key: SigningKey) -> None:
    root = etree.fromstring(document(key, data("v", in_response_to=None)))
    assert "InResponseTo" not in root.attrib
    assert b"InResponseTo" not in etree.tostring(root)
    XmlsecCrypto().verify(root, [key.cert_pem])


def test_any_changed_byte_breaks_the_signature(key: SigningKey) -> None:
    doc = document(key, data("v"))
    tampered = doc.replace(b"arn:aws:iam::111122223333:role/A", b"arn:aws:iam::111122223333:role/B")
    root = etree.fromstring(tampered)
    with pytest.raises(SamlSignatureError):
        XmlsecCrypto().verify(root.find(SAML + "Assertion"), [key.cert_pem])  # type: ignore[arg-type]
    with pytest.raises(SamlSignatureError):
        XmlsecCrypto().verify(root, [key.cert_pem])


@pytest.mark.parametrize("bad", ["nul\x00", "bell\x07", "escape\x1b[0m", "surrogate\ud800",
                                 "nonchar\ufffe"])
def test_characters_xml_cannot_carry_are_refused_like_lxml(key: SigningKey, bad: str) -> None:
    with pytest.raises(ValueError):
        etree.Element("x").text = bad
    with pytest.raises(ValueError, match="XML compatible"):
        document(key, data("ok", attributes=(Attribute("urn:x", (bad,)),)))
    with pytest.raises(ValueError, match="XML compatible"):
        document(key, data("ok", name_id=NameId(bad, PERSISTENT)))

