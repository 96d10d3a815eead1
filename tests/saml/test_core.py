"""The protocol core without HTTP: pinned clock and IDs, NameID formats, metadata signing."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from urllib.parse import urlencode

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.app import build_components
from idp.audit import Auditor, MemorySink, RequestInfo
from idp.directory import Identity
from idp.saml import PostForm, SamlDeps, SamlIdp, SamlStatusError
from idp.saml.attributes import aws_name, name_id, pick_format
from idp.saml.build import instant
from idp.saml.idp_metadata import idp_metadata
from idp.saml.metadata import EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED, aws_sp, load_metadata
from idp.saml.xml import NS
from tests.helpers import config as make_config

T = 1_800_000_000.0  # pinned "now"
INFO = RequestInfo("127.0.0.1", "test")


def core(tmp_path: Path, keys: Path, **saml: object) -> SamlIdp:
    cfg = make_config(tmp_path, keys, saml=saml)
    comps = build_components(cfg, demo=True, auditor=Auditor(MemorySink()))
    ids = (f"_id{n}" for n in itertools.count())
    iam = comps.iam
    return SamlIdp(SamlDeps(cfg.saml, cfg.issuer, comps.keys, comps.store, comps.auditor,
                            comps.sessions, load_metadata([], [aws_sp(cfg.issuer)]), b"k" * 32,
                            lambda g, a, sp: iam.roles_for(g, a, sp, kind="saml"),
                            clock=lambda: T, id_gen=lambda: next(ids)))


def test_assertion_windows_follow_the_pinned_clock(tmp_path: Path, demo_keys_dir: Path) -> None:
    idp = core(tmp_path, demo_keys_dir, assertion_lifetime=120, clock_skew=30)
    sess = idp.d.sessions.create(Identity("alice", "s-1", ("admins",),
                                          {"email": "alice@example.org"}))
    out = idp.idp_initiated("urn:amazon:webservices", None, sess, INFO)
    assert isinstance(out, PostForm) and "RelayState" not in out.fields
    root = etree.fromstring(base64.b64decode(out.fields["SAMLResponse"]))
    assert (root.get("ID"), root.get("IssueInstant")) == ("_id1", instant(T))
    a = root.find("saml:Assertion", NS)
    assert a is not None and a.get("ID") == "_id0"
    cond = a.find("saml:Conditions", NS)
    assert cond is not None
    assert (cond.get("NotBefore"), cond.get("NotOnOrAfter")) == (instant(T - 30),
                                                                  instant(T + 120))
    scd = a.find(".//saml:SubjectConfirmationData", NS)
    assert scd is not None and scd.get("NotOnOrAfter") == instant(T + 120)
    assert scd.get("Recipient") == "http://127.0.0.1:8000/federation/saml"
    st = a.find("saml:AuthnStatement", NS)
    assert st is not None and st.get("AuthnInstant") == instant(sess.auth_time)
    assert st.get("SessionIndex") == sess.extra["saml_session_index"]
    ctx = st.find(".//saml:AuthnContextClassRef", NS)
    assert ctx is not None and ctx.text.endswith(":Password")  # http issuer: no TLS claim
    assert sess.participants == ["urn:amazon:webservices"]


def test_metadata_can_be_signed(tmp_path: Path, demo_keys_dir: Path) -> None:
    idp = core(tmp_path, demo_keys_dir, sign_metadata=True)
    xml = idp_metadata(idp)
    cert = idp.d.keys.active("RS256").cert_pem
    assert OneLogin_Saml2_Utils.validate_metadata_sign(xml, cert, raise_exceptions=True)
    assert b'entityID="http://127.0.0.1:8000/saml/metadata"' in xml


SALT = b"s" * 32
SP_A, SP_B = "https://a.example", "https://b.example"


@pytest.mark.parametrize(("fmt", "check"), [
    pytest.param(PERSISTENT, lambda n, again, other: n.value == again.value != other.value
                 and len(n.value) == 43 and n.sp_name_qualifier == SP_A,
                 id="persistent: stable per SP, pairwise across SPs"),
    pytest.param(TRANSIENT, lambda n, again, other: n.value != again.value,
                 id="transient: new each time"),
    pytest.param(EMAIL, lambda n, again, other: n.value == "alice@example.org",
                 id="emailAddress: the directory email"),
    pytest.param(UNSPECIFIED, lambda n, again, other: n.value == "alice",
                 id="unspecified: the username"),
])
def test_name_id_formats(fmt: str, check: object) -> None:
    def make(sp: str) -> object:
        return name_id(fmt, sp, "subject-1", "alice@example.org", "alice", SALT, "idp")

    assert check(make(SP_A), make(SP_A), make(SP_B))  # type: ignore[operator]


@pytest.mark.parametrize(("requested", "sp_formats", "configured", "expected"), [
    pytest.param(None, (), None, PERSISTENT, id="nothing asked: persistent"),
    pytest.param(UNSPECIFIED, (EMAIL,), None, EMAIL, id="unspecified: the SP's first format"),
    pytest.param(None, (EMAIL,), TRANSIENT, TRANSIENT, id="configured beats metadata"),
    pytest.param(TRANSIENT, (EMAIL,), None, TRANSIENT, id="NameIDPolicy wins"),
])
def test_pick_format(requested: str | None, sp_formats: tuple[str, ...], configured: str | None,
                     expected: str) -> None:
    assert pick_format(requested, sp_formats, configured) == expected


def test_email_name_id_without_email_is_refused() -> None:
    with pytest.raises(SamlStatusError) as err:
        name_id(EMAIL, SP_A, "s", None, "carol", SALT, "idp")
    assert err.value.sub_status.endswith("InvalidNameIDPolicy")


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("alice@example.org", "alice@example.org", id="email kept"),
    pytest.param("a", "a-", id="too short: padded to 2"),
    pytest.param("x" * 80, "x" * 64, id="too long: cut to 64"),
    pytest.param("Jürgen O'Neil", "J-rgen-O-Neil", id="outside [\\w+=,.@-]: replaced"),
])
def test_aws_role_session_name(value: str, expected: str) -> None:
    assert aws_name(value) == expected


UNSIGNED_SP = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
 entityID="https://plain.example/sp"><md:SPSSODescriptor
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
 <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
 Location="https://plain.example/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"""


@pytest.mark.parametrize(("required", "refused"), [
    pytest.param(True, True, id="IdP requires signed requests: unsigned one refused"),
    pytest.param(False, False, id="neither side requires it: unsigned one accepted"),
])
def test_idp_can_require_signed_requests(tmp_path: Path, demo_keys_dir: Path, required: bool,
                                         refused: bool) -> None:
    from idp.saml import Binding, NeedLogin, SamlSignatureError
    from idp.saml.xml import encode_redirect

    mdir = tmp_path / "md"
    mdir.mkdir()
    (mdir / "plain.xml").write_text(UNSIGNED_SP)
    idp = core(tmp_path, demo_keys_dir, want_authn_requests_signed=required)
    idp.sps.update(load_metadata([mdir]).sps)
    xml = (f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" '
           f'ID="_r1" Version="2.0" IssueInstant="{instant(T)}"><saml:Issuer>'
           f'https://plain.example/sp</saml:Issuer></samlp:AuthnRequest>').encode()
    msg = Binding.query(urlencode({"SAMLRequest": encode_redirect(xml)}))
    if refused:
        with pytest.raises(SamlSignatureError) as err:
            idp.sso(msg, None, INFO)
        assert err.value.code == "signature_required"
    else:
        assert isinstance(idp.sso(msg, None, INFO), NeedLogin)


def test_sp_options_config_wins_over_the_shared_defaults(tmp_path: Path,
                                                         demo_keys_dir: Path) -> None:
    """Options of an SP the config does not name are shared defaults (AWS: IdP-initiated and
    its attributes; others: neither), frozen so that no request can change them for the next;
    an SP the config names gets its own."""
    from pydantic import ValidationError

    from idp.saml.metadata import AWS_CONSOLE_ENTITY_ID, AWS_ENTITY_ID

    named = "https://sp.example/metadata"
    idp = core(tmp_path, demo_keys_dir,
               service_providers={named: {"name_id_format": EMAIL},
                                  AWS_ENTITY_ID: {"idp_initiated": False}})
    sps = {e: type("Sp", (), {"entity_id": e})() for e in (
        named, AWS_ENTITY_ID, AWS_CONSOLE_ENTITY_ID, "https://other.example/metadata")}
    got = {e: idp.options(sp) for e, sp in sps.items()}  # type: ignore[arg-type]
    assert got[named].name_id_format == EMAIL and not got[named].idp_initiated
    assert not got[AWS_ENTITY_ID].idp_initiated and not got[AWS_ENTITY_ID].aws_attributes
    assert got[AWS_CONSOLE_ENTITY_ID].idp_initiated and got[AWS_CONSOLE_ENTITY_ID].aws_attributes
    other = got["https://other.example/metadata"]
    assert not other.idp_initiated and not other.aws_attributes and other.name_id_format is None
    with pytest.raises(ValidationError):
        other.idp_initiated = True  # type: ignore[misc]
