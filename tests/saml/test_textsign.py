"""The text-written signed Response (idp/saml/textsign.py) against lxml's exclusive C14N and
python-xmlsec: the digested text must be exactly what a verifier canonicalises."""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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



# -- every value on its own, random values, many roles ---------------------------------------

def check_digests(doc: bytes, key: SigningKey) -> etree._Element:
    """Independently of python-xmlsec: for the Response and the Assertion, lxml's exclusive
    C14N of the element less its Signature (the enveloped-signature transform) hashes to the
    DigestValue written, and the RSA signature verifies over lxml's C14N of SignedInfo
    (XML Signature 1.1 §3.2.1, §3.2.2).  Returns the parsed document."""
    root = etree.fromstring(doc)
    assertion = root.find(SAML + "Assertion")
    assert assertion is not None
    public = key.private_key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    for el in (assertion, root):  # the assertion first: the Response's digest includes it
        copy = etree.fromstring(etree.tostring(el))
        sig = copy.find("ds:Signature", NS)
        assert sig is not None and copy.index(sig) == 1  # right after the Issuer
        written = sig.findtext("ds:SignedInfo/ds:Reference/ds:DigestValue", namespaces=NS)
        signed_info = sig.find("ds:SignedInfo", NS)
        assert signed_info is not None
        value = base64.b64decode(sig.findtext("ds:SignatureValue", namespaces=NS) or "")
        public.verify(value, etree.tostring(signed_info, method="c14n", exclusive=True),
                      padding.PKCS1v15(), hashes.SHA256())
        copy.remove(sig)
        canonical = etree.tostring(copy, method="c14n", exclusive=True)
        assert base64.b64encode(hashlib.sha256(canonical).digest()).decode() == written
    return root


PLAIN_FIELDS = ["issuer", "response_id", "assertion_id", "destination", "name_id",
                "name_id_format", "name_qualifier", "sp_name_qualifier", "in_response_to",
                "recipient", "audience", "session_index", "authn_context", "attribute_name",
                "friendly_name", "attribute_value", "last_role"]
ONE_AWKWARD = ['a&b', 'a<b', 'a>b', 'a"b', "a'b", "a\tb", "a\nb", "a\rb", "a\r\nb", "é",
               "東京", "\U0001f511", "\x7f", "]]>", "&amp;"]


def with_field(field: str, value: str) -> tuple[AssertionData, str, str]:
    """Plain data (no value needs escaping) except ``value`` in one ``field``; also returns
    the response ID and destination to use."""
    a = data("plain")
    n = a.name_id
    response_id, destination = "_r1", "https://sp/acs"
    roles = tuple(f"arn:aws:iam::111122223333:role/R{i},arn:aws:iam::111122223333:"
                  "saml-provider/idp" for i in range(5))
    attributes = [Attribute("urn:x", ("v1", "v2"), "fx"), Attribute("urn:role", roles)]
    changes: dict[str, Any] = {}
    if field == "issuer":
        changes["issuer"] = value
    elif field == "response_id":
        response_id = value
    elif field == "assertion_id":
        changes["id"] = value
    elif field == "destination":
        destination = value
    elif field == "name_id":
        changes["name_id"] = NameId(value, n.format, n.sp_name_qualifier, n.name_qualifier)
    elif field == "name_id_format":
        changes["name_id"] = NameId(n.value, value, n.sp_name_qualifier, n.name_qualifier)
    elif field == "name_qualifier":
        changes["name_id"] = NameId(n.value, n.format, n.sp_name_qualifier, value)
    elif field == "sp_name_qualifier":
        changes["name_id"] = NameId(n.value, n.format, value, n.name_qualifier)
    elif field in ("in_response_to", "recipient", "audience", "session_index",
                   "authn_context"):
        changes[field] = value
    elif field == "attribute_name":
        attributes[0] = Attribute(value, ("v1", "v2"), "fx")
    elif field == "friendly_name":
        attributes[0] = Attribute("urn:x", ("v1", "v2"), value)
    elif field == "attribute_value":
        attributes[0] = Attribute("urn:x", ("v1", value), "fx")
    elif field == "last_role":
        attributes[1] = Attribute("urn:role", (*roles, value))
    else:
        raise AssertionError(field)
    changes["attributes"] = tuple(attributes)
    return replace(a, **changes), response_id, destination


@pytest.mark.parametrize("field", PLAIN_FIELDS)
def test_one_value_needing_escapes_anywhere_is_escaped(key: SigningKey, field: str) -> None:
    """The writer skips escaping when no value needs it: one value that does, in any place a
    value is written, must still come out canonical, signed and round-tripped."""
    for value in ONE_AWKWARD:
        a, response_id, destination = with_field(field, value)
        doc = textsign.signed_response(a, response_id=response_id, destination=destination,
                                       key=key, cert_b64=cert_b64(key))
        root = check_digests(doc, key)
        assert etree.tostring(root, method="c14n", exclusive=True) == doc.replace(XS_DECL, b"")
        # the value reads back as it was (a CR in text is kept as &#xD;, in attributes too)
        assert value in _strings(root), (field, value)
        if field not in ("assertion_id", "response_id"):  # xmlsec resolves the URI as an ID
            XmlsecCrypto().verify(root, [key.cert_pem])
            assertion = root.find(SAML + "Assertion")
            assert assertion is not None
            XmlsecCrypto().verify(assertion, [key.cert_pem])


def _strings(root: etree._Element) -> set[str]:
    out: set[str] = set()
    for el in root.iter():
        if el.text:
            out.add(el.text)
        out.update(el.attrib.values())
    return out


_ALPHABET = ("abcXYZ019 -_.:/,=+@#?%;~!$()*[]{}|^`'\"&<>\t\n\r" + "éßØ東京ж" + "\U0001f511"
             + "\x7f\x85\xa0")


def _random_value(rng: random.Random) -> str:
    if rng.random() < 0.6:  # mostly values that need nothing, as in real data
        return "".join(rng.choice("abcxyz0123456789:/.-_") for _ in range(rng.randint(1, 30)))
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 30)))


def test_random_documents_are_canonical_and_verify(key: SigningKey) -> None:
    """Many documents with random values (mostly plain, some with every character C14N
    escapes, whitespace, non-ASCII) in every place: canonical as written, both digests equal
    lxml's C14N of the element, both signatures verify with python-xmlsec."""
    rng = random.Random(20240501)
    for i in range(150):
        r = lambda: _random_value(rng)  # noqa: E731
        attributes = tuple(
            Attribute(r() or "n", tuple(r() for _ in range(rng.randint(1, 4))),
                      r() if rng.random() < 0.5 else None)
            for _ in range(rng.randint(0, 6)))
        a = data("x", id=f"_a{i}", issuer=r(), audience=r(), recipient=r(),
                 in_response_to=r() if rng.random() < 0.8 else None, session_index=r(),
                 authn_context=r(),
                 name_id=NameId(r(), r() or "f", r() if rng.random() < 0.5 else None,
                                r() if rng.random() < 0.5 else None),
                 attributes=attributes)
        doc = textsign.signed_response(a, response_id=f"_r{i}", destination=r(), key=key,
                                       cert_b64=cert_b64(key))
        root = check_digests(doc, key)
        assert etree.tostring(root, method="c14n", exclusive=True) == doc.replace(XS_DECL, b"")
        if i % 5 == 0:
            XmlsecCrypto().verify(root, [key.cert_pem])
            assertion = root.find(SAML + "Assertion")
            assert assertion is not None
            XmlsecCrypto().verify(assertion, [key.cert_pem])
            read = [tuple(v.text or "" for v in e.iterfind("saml:AttributeValue", NS))
                    for e in assertion.iterfind(".//saml:Attribute", NS)]
            assert read == [attr.values for attr in attributes]


def test_many_roles_and_tags(key: SigningKey) -> None:
    """An AWS-style attribute statement with many Role values and PrincipalTags."""
    roles = tuple(f"arn:aws:iam::{100000000000 + i}:role/team-{i}/Role{i},arn:aws:iam::"
                  f"{100000000000 + i}:saml-provider/idp" for i in range(60))
    attributes = (Attribute("https://aws.amazon.com/SAML/Attributes/Role", roles),
                  *(Attribute(f"https://aws.amazon.com/SAML/Attributes/PrincipalTag:k{i}",
                              (f"value {i} & <{i}>",)) for i in range(40)))
    doc = document(key, data("plain", attributes=attributes))
    root = check_digests(doc, key)
    assert etree.tostring(root, method="c14n", exclusive=True) == doc.replace(XS_DECL, b"")
    XmlsecCrypto().verify(root, [key.cert_pem])
    assertion = root.find(SAML + "Assertion")
    assert assertion is not None
    XmlsecCrypto().verify(assertion, [key.cert_pem])
    values = [v.text for v in assertion.iterfind(".//saml:AttributeValue", NS)]
    assert values[:60] == list(roles) and values[60] == "value 0 & <0>"
