"""Single logout over the HTTP-POST binding, at the protocol core: signed LogoutRequests out,
signed LogoutRequests and LogoutResponses in (SAML Profiles §4.4, SAML Bindings §3.5)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.app import build_components
from idp.audit import Auditor, MemorySink, RequestInfo
from idp.directory import Identity
from idp.login.sessions import IdpSession
from idp.saml import Binding, Done, PostForm, SamlDeps, SamlIdp, SamlSignatureError
from idp.saml.build import instant
from idp.saml.crypto import XmlsecCrypto
from idp.saml.metadata import load_metadata
from idp.saml.slo import Logout
from idp.saml.xml import NS
from tests.helpers import config as make_config
from tests.saml.spapps import _b64_body, make_cert

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
INFO = RequestInfo("127.0.0.1", "test")
SPS = {name: (f"https://{name}.example/sp", *make_cert(name)) for name in ("one", "two")}


def sp_metadata(entity: str, cert: str) -> str:
    return f"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
 xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
 <md:SPSSODescriptor protocolSupportEnumeration="{SAMLP}" AuthnRequestsSigned="true">
 <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
 {_b64_body(cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
 <md:SingleLogoutService Binding="{POST}" Location="{entity}/slo"/>
 <md:AssertionConsumerService Binding="{POST}" Location="{entity}/acs" index="0"/>
 </md:SPSSODescriptor></md:EntityDescriptor>"""


@pytest.fixture
def setup(tmp_path: Path, demo_keys_dir: Path) -> tuple[SamlIdp, Logout, IdpSession]:
    mdir = tmp_path / "md"
    mdir.mkdir()
    for name, (entity, _key, cert) in SPS.items():
        (mdir / f"{name}.xml").write_text(sp_metadata(entity, cert))
    cfg = make_config(tmp_path, demo_keys_dir)
    comps = build_components(cfg, demo=True, auditor=Auditor(MemorySink()))
    idp = SamlIdp(SamlDeps(cfg.saml, cfg.issuer, comps.keys, comps.store, comps.auditor,
                           comps.sessions, load_metadata([mdir]), b"k" * 32))
    sess = comps.sessions.create(Identity("alice", "s-1", (), {"email": "a@example.org"}))
    for entity, _key, _cert in SPS.values():  # alice signed in to both SPs
        pending = {"sp": entity, "acs": entity + "/acs", "request_id": None, "relay": None,
                   "force": False, "passive": False, "format": None, "spnq": None,
                   "contexts": [], "comparison": "exact", "received": int(time.time())}
        assert isinstance(idp.proceed(pending, sess, INFO, None), PostForm)
    return idp, Logout(idp), sess


def idp_cert(idp: SamlIdp) -> str:
    return idp.d.keys.active("RS256").cert_pem


def decode(form: PostForm, field: str) -> etree._Element:
    return etree.fromstring(base64.b64decode(form.fields[field]))


def test_sp_initiated_logout_over_post(setup: tuple[SamlIdp, Logout, IdpSession]) -> None:
    idp, logout, sess = setup
    one, one_key, one_cert = SPS["one"]
    two, two_key, two_cert = SPS["two"]
    name_id = sess.extra["saml"][one]["name_id"]
    req = (f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_lo1" '
           f'Version="2.0" IssueInstant="{instant(time.time())}" Destination="{idp.slo_url}">'
           f'<saml:Issuer>{one}</saml:Issuer><saml:NameID>{name_id}</saml:NameID>'
           f'</samlp:LogoutRequest>')
    signed = OneLogin_Saml2_Utils.add_sign(req, one_key, one_cert)
    out = logout.handle(Binding(False, {"SAMLRequest": base64.b64encode(signed).decode(),
                                        "RelayState": "back"}), sess, INFO)
    # the other SP is told first, by a signed LogoutRequest over POST
    assert isinstance(out, PostForm) and out.action == two + "/slo"
    lr = decode(out, "SAMLRequest")
    XmlsecCrypto().verify(lr, [idp_cert(idp)])
    assert lr.findtext("saml:NameID", namespaces=NS) == sess.extra["saml"][two]["name_id"]
    assert idp.d.sessions.get(sess.id) is None, "the IdP session is over"
    resp = (f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r2" '
            f'Version="2.0" IssueInstant="{instant(time.time())}" Destination="{idp.slo_url}" '
            f'InResponseTo="{lr.get("ID")}"><saml:Issuer>{two}</saml:Issuer><samlp:Status>'
            f'<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
            f'</samlp:Status></samlp:LogoutResponse>')
    signed = OneLogin_Saml2_Utils.add_sign(resp, two_key, two_cert)
    final = logout.handle(Binding(False, {"SAMLResponse": base64.b64encode(signed).decode(),
                                          "RelayState": out.fields["RelayState"]}), None, INFO)
    # then the SP that asked gets a signed LogoutResponse, RelayState verbatim
    assert isinstance(final, PostForm) and final.action == one + "/slo"
    assert final.fields["RelayState"] == "back"
    answer = decode(final, "SAMLResponse")
    XmlsecCrypto().verify(answer, [idp_cert(idp)])
    assert answer.get("InResponseTo") == "_lo1"
    code = answer.find("samlp:Status/samlp:StatusCode", NS)
    assert code is not None and code.get("Value").endswith(":Success")


def test_logout_request_signed_by_another_key_is_refused(
        setup: tuple[SamlIdp, Logout, IdpSession]) -> None:
    idp, logout, sess = setup
    one = SPS["one"][0]
    key, cert = make_cert("mallory")
    req = (f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_lo2" '
           f'Version="2.0" IssueInstant="{instant(time.time())}"><saml:Issuer>{one}'
           f'</saml:Issuer><saml:NameID>x</saml:NameID></samlp:LogoutRequest>')
    signed = OneLogin_Saml2_Utils.add_sign(req, key, cert)
    with pytest.raises(SamlSignatureError):
        logout.handle(Binding(False, {"SAMLRequest": base64.b64encode(signed).decode()}),
                      None, INFO)
    assert idp.d.sessions.get(sess.id) is not None, "nothing was ended"


def test_idp_initiated_logout_over_post_ends_with_a_page(
        setup: tuple[SamlIdp, Logout, IdpSession]) -> None:
    idp, logout, sess = setup
    out = logout.idp_initiated(sess, INFO)
    seen = []
    while isinstance(out, PostForm):
        lr = decode(out, "SAMLRequest")
        XmlsecCrypto().verify(lr, [idp_cert(idp)])
        entity = lr.findtext("saml:Issuer", namespaces=NS)
        assert entity == idp.entity_id
        sp = next(v for v in SPS.values() if out.action == v[0] + "/slo")
        seen.append(sp[0])
        resp = (f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" '
                f'ID="_r{len(seen)}" Version="2.0" IssueInstant="{instant(time.time())}" '
                f'Destination="{idp.slo_url}" InResponseTo="{lr.get("ID")}"><saml:Issuer>'
                f'{sp[0]}</saml:Issuer><samlp:Status>'
                f'<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
                f'</samlp:Status></samlp:LogoutResponse>')
        signed = OneLogin_Saml2_Utils.add_sign(resp, sp[1], sp[2])
        out = logout.handle(Binding(False, {"SAMLResponse": base64.b64encode(signed).decode(),
                                            "RelayState": out.fields["RelayState"]}), None, INFO)
    assert isinstance(out, Done)
    assert sorted(seen) == sorted(v[0] for v in SPS.values())
