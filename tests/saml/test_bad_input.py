"""Hostile and broken input: each case is refused with a 4xx page or a SAML error status, and
no assertion is issued (never a 500)."""

from __future__ import annotations

import base64
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.demo import demo_config
from idp.saml.build import instant
from idp.saml.messages import sign_redirect
from idp.saml.metadata import load_metadata
from idp.saml.xml import NS, encode_redirect
from tests.fixtures.live import live_idp
from tests.fixtures.servers import free_port
from tests.saml.conftest import Federation, start_federation
from tests.saml.spapps import OneLoginSp, make_cert

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
OTHER_KEY, OTHER_CERT = make_cert("mallory")


@pytest.fixture(scope="module")
def fed(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    yield from start_federation(demo_keys_dir, tmp_path_factory.mktemp("bad"))


def request_xml(fed: Federation, *, issuer: str | None = None, attrs: str = "",
                body: str = "", issued: float | None = None, prolog: str = "") -> bytes:
    sp = fed.onelogin
    return (f'{prolog}<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" '
            f'ID="_{uuid.uuid4().hex}" Version="2.0" '
            f'IssueInstant="{instant(issued or time.time())}" '
            f'Destination="{fed.idp.url}/saml/sso"{attrs}>'
            f'<saml:Issuer>{issuer or sp.entity_id}</saml:Issuer>{body}'
            f'</samlp:AuthnRequest>').encode()


def redirect(fed: Federation, xml: bytes | None = None, *, key: str | None = "sp",
             relay: str | None = None, raw: str | None = None,
             tamper: Callable[[str], str] | None = None) -> str:
    params = [("SAMLRequest", raw if raw is not None else encode_redirect(
        xml or request_xml(fed)))]
    if relay is not None:
        params.append(("RelayState", relay))
    if key is None:
        query = urlencode(params)
    else:
        pem = fed.onelogin.key if key == "sp" else key
        query = sign_redirect(params, load_pem_private_key(pem.encode(), None))  # type: ignore[arg-type]
    if tamper:
        query = tamper(query)
    return f"{fed.idp.url}/saml/sso?{query}"


def post(fed: Federation, xml: bytes, *, key: str = "sp", cert: str | None = None,
         after: Callable[[bytes], bytes] | None = None) -> dict[str, str]:
    signed = OneLogin_Saml2_Utils.add_sign(xml, fed.onelogin.key if key == "sp" else key,
                                           cert or fed.onelogin.cert)
    return {"SAMLRequest": base64.b64encode(after(signed) if after else signed).decode()}


def bomb() -> str:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = c.compress(b"<a>" + b" " * (20 * 1024 * 1024)) + c.flush()
    return base64.b64encode(data).decode()


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')
XXE = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@dataclass(frozen=True)
class Bad:
    """A request and the 4xx it must get."""

    send: Callable[[Federation], requests.Response]
    status: int
    code: str | None  # the audited refusal (None: refused by the web layer's size limit)


def _get(url: Callable[[Federation], str]) -> Callable[[Federation], requests.Response]:
    return lambda f: requests.get(url(f), timeout=10, allow_redirects=False)


def _post(data: Callable[[Federation], dict[str, str]]
          ) -> Callable[[Federation], requests.Response]:
    return lambda f: requests.post(f.idp.url + "/saml/sso", data=data(f), timeout=10,
                                   allow_redirects=False)


EVIL_ACS = ' AssertionConsumerServiceURL="https://evil.example/acs"'
DTD_REF = '<!DOCTYPE samlp:AuthnRequest SYSTEM "http://evil.example/x.dtd">'


def _b64(xml: bytes) -> dict[str, str]:
    return {"SAMLRequest": base64.b64encode(xml).decode()}


def _swap(f: Federation) -> Callable[[str], str]:
    """Replace the signed SAMLRequest by another request, keeping the signature."""
    other = quote(encode_redirect(request_xml(f)), safe="")
    return lambda q: re.sub(r"SAMLRequest=[^&]+", "SAMLRequest=" + other, q)


def _add_attr(x: bytes) -> bytes:
    return x.replace(b'Version="2.0"', b'Version="2.0" ForceAuthn="true"', 1)


def _xsw(f: Federation, same_id: bool) -> dict[str, str]:
    """Signature wrapping: an evil request carries the signed one inside <Extensions>."""
    signed = etree.fromstring(base64.b64decode(post(f, request_xml(f))["SAMLRequest"]))
    evil = etree.fromstring(etree.tostring(signed))
    evil.set("AssertionConsumerServiceURL", "https://evil.example/acs")
    if not same_id:
        evil.set("ID", "_evil")
    ext = etree.SubElement(evil, f"{{{SAMLP}}}Extensions")
    ext.append(signed)
    return _b64(etree.tostring(evil))


def _slo(f: Federation, params: dict[str, str]) -> requests.Response:
    return requests.get(f"{f.idp.url}/saml/slo?" + urlencode(params), timeout=10,
                        allow_redirects=False)


def _logout_request(f: Federation) -> str:
    xml = (f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_lr1" '
           f'Version="2.0" IssueInstant="{instant(time.time())}"><saml:Issuer>'
           f'{f.onelogin.entity_id}</saml:Issuer><saml:NameID>x</saml:NameID>'
           f'</samlp:LogoutRequest>')
    return encode_redirect(xml.encode())


def _logout_response(f: Federation) -> str:
    xml = (f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_lr2" '
           f'Version="2.0" IssueInstant="{instant(time.time())}" InResponseTo="_x">'
           f'<saml:Issuer>{f.onelogin.entity_id}</saml:Issuer><samlp:Status>'
           f'<samlp:StatusCode Value="{STATUS}Success"/></samlp:Status>'
           f'</samlp:LogoutResponse>')
    return encode_redirect(xml.encode())


BAD = [
    pytest.param(Bad(_post(lambda f: _xsw(f, True)), 403, "invalid_signature"),
                 id="xsw: signed request wrapped in an evil one with the same ID"),
    pytest.param(Bad(_post(lambda f: _xsw(f, False)), 403, "invalid_signature"),
                 id="xsw: signature of the wrapped request reused on the evil root"),
    pytest.param(Bad(lambda f: _slo(f, {"SAMLRequest": _logout_request(f)}),
                     403, "signature_required"),
                 id="unsigned LogoutRequest from an SP that signs"),
    pytest.param(Bad(lambda f: _slo(f, {"SAMLResponse": _logout_response(f),
                                        "RelayState": "unknown"}),
                     400, "unexpected_logout_response"),
                 id="LogoutResponse with no logout in progress"),
    pytest.param(Bad(_get(lambda f: redirect(
        f, request_xml(f, issuer="https://evil.example/sp"), key=OTHER_KEY)),
        400, "unknown_sp"), id="unknown SP"),
    pytest.param(Bad(_get(lambda f: redirect(f, request_xml(f, attrs=EVIL_ACS))),
                     400, "acs_not_in_metadata"), id="ACS URL not in metadata (redirect)"),
    pytest.param(Bad(_post(lambda f: post(f, request_xml(f, attrs=EVIL_ACS))),
                     400, "acs_not_in_metadata"), id="ACS URL not in metadata (post)"),
    pytest.param(Bad(_get(lambda f: redirect(f, key=None)), 403, "signature_required"),
                 id="unsigned request where the SP signs (redirect)"),
    pytest.param(Bad(_post(lambda f: _b64(request_xml(f))), 403, "signature_required"),
                 id="unsigned request where the SP signs (post)"),
    pytest.param(Bad(_get(lambda f: redirect(f, tamper=_swap(f))), 403, "invalid_signature"),
                 id="tampered redirect: message swapped under the signature"),
    pytest.param(Bad(_get(lambda f: redirect(f, key=OTHER_KEY)), 403, "invalid_signature"),
                 id="redirect signed by another key"),
    pytest.param(Bad(_post(lambda f: post(f, request_xml(f), after=_add_attr)),
                     403, "invalid_signature"), id="tampered post: attribute added after signing"),
    pytest.param(Bad(_post(lambda f: post(f, request_xml(f), key=OTHER_KEY, cert=OTHER_CERT)),
                     403, "invalid_signature"),
                 id="post signed by another key with its own KeyInfo"),
    pytest.param(Bad(_get(lambda f: f"{f.idp.url}/saml/sso?" + urlencode(
        {"SAMLRequest": bomb()})), 413, "message_too_large"), id="DEFLATE bomb"),
    pytest.param(Bad(_post(lambda f: _b64(request_xml(f, body="<!--" + "x" * 100_000 + "-->"))),
                     413, "message_too_large"), id="oversized request (over the message limit)"),
    pytest.param(Bad(_post(lambda f: {"SAMLRequest": "A" * 400_000}), 413, None),
                 id="oversized request (over the form limit)"),
    pytest.param(Bad(_post(lambda f: _b64(request_xml(f, prolog=LAUGHS, issuer="&lol3;"))),
                     400, "dtd_forbidden"), id="billion laughs"),
    pytest.param(Bad(_post(lambda f: _b64(request_xml(f, prolog=XXE, issuer="&xxe;"))),
                     400, "dtd_forbidden"), id="external entity (XXE)"),
    pytest.param(Bad(_get(lambda f: redirect(f, request_xml(f, prolog=DTD_REF))),
                     400, "dtd_forbidden"), id="DTD reference"),
    pytest.param(Bad(_post(lambda f: _b64(b"<samlp:AuthnRequest><unclosed>")),
                     400, "malformed_xml"), id="malformed XML"),
    pytest.param(Bad(_post(lambda f: {"SAMLRequest": "not*base64!"}), 400, "malformed_base64"),
                 id="malformed base64"),
    pytest.param(Bad(_get(lambda f: redirect(f, raw=base64.b64encode(b"plain").decode())),
                     400, "malformed_deflate"), id="not DEFLATE data"),
    pytest.param(Bad(_get(lambda f: redirect(f, relay="r" * 81)), 400, "relay_state_too_long"),
                 id="RelayState over the limit"),
    pytest.param(Bad(_get(lambda f: redirect(f, request_xml(f, issued=time.time() - 7200))),
                     400, "request_expired"), id="stale IssueInstant"),
    pytest.param(Bad(_get(lambda f: f"{f.idp.url}/saml/sso?resume=nope"),
                     400, "request_expired"), id="unknown pending request"),
    pytest.param(Bad(_get(lambda f: f"{f.idp.url}/saml/sso"), 400, "invalid_saml_request"),
                 id="no SAMLRequest at all"),
    pytest.param(Bad(_get(lambda f: f"{f.idp.url}/saml/sso?" + urlencode(
        {"SAMLRequest": _logout_request(f)})), 400, "invalid_saml_request"),
        id="a LogoutRequest sent to the SSO endpoint"),
    pytest.param(Bad(_get(lambda f: f"{f.idp.url}/saml/idp-initiated?sp=https://evil"),
                     400, "unknown_sp"), id="IdP-initiated to an unknown SP"),
]


def _counts(fed: Federation) -> tuple[int, int]:
    names = [r["eventName"] for r in fed.idp.audit.records]
    return names.count("SamlAssertionIssued"), names.count("SamlRequestRefused")


@pytest.mark.parametrize("case", BAD)
def test_bad_request_is_refused_without_assertion(fed: Federation, case: Bad) -> None:
    issued, refused = _counts(fed)
    resp = case.send(fed)
    assert resp.status_code == case.status, resp.text[:300]
    assert "SAMLResponse" not in resp.text
    assert _counts(fed)[0] == issued
    refusals = [r for r in fed.idp.audit.records if r["eventName"] == "SamlRequestRefused"]
    assert [r.get("errorCode") for r in refusals[refused:]] == ([case.code] if case.code else [])


def test_replayed_request_is_refused(fed: Federation) -> None:
    url = redirect(fed)
    assert requests.get(url, timeout=5, allow_redirects=False).status_code in (302, 303)
    again = requests.get(url, timeout=5, allow_redirects=False)
    assert again.status_code == 400 and "already used" in again.text


STATUS_CASES = [
    pytest.param(' IsPassive="true"', "", False, "NoPassive", id="IsPassive without session"),
    pytest.param("", f'<samlp:NameIDPolicy xmlns:samlp="{SAMLP}" Format='
                 '"urn:oasis:names:tc:SAML:2.0:nameid-format:encrypted"/>', True,
                 "InvalidNameIDPolicy", id="NameIDPolicy with an unsupported format"),
    pytest.param("", f'<samlp:NameIDPolicy xmlns:samlp="{SAMLP}" SPNameQualifier='
                 '"https://other.example"/>', True, "InvalidNameIDPolicy",
                 id="NameIDPolicy SPNameQualifier of another SP"),
    pytest.param("", f'<samlp:RequestedAuthnContext xmlns:samlp="{SAMLP}" Comparison="exact">'
                 f'<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:X509'
                 '</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>', True,
                 "NoAuthnContext", id="RequestedAuthnContext that cannot be met"),
]


@pytest.mark.parametrize(("attrs", "body", "login", "sub"), STATUS_CASES)
def test_unmet_request_gets_saml_error_status(fed: Federation, attrs: str, body: str,
                                              login: bool, sub: str) -> None:
    issued, _ = _counts(fed)
    browser = fed.browser()
    if login:
        browser.go(fed.onelogin.base + "/login")
        issued, _ = _counts(fed)
    action, fields = browser.saml_form(redirect(fed, request_xml(fed, attrs=attrs, body=body)))
    assert action == fed.onelogin.base + "/acs"
    root = etree.fromstring(base64.b64decode(fields["SAMLResponse"]))
    assert root.find("saml:Assertion", NS) is None
    assert root.find("saml:EncryptedAssertion", NS) is None
    codes = [c.get("Value") for c in root.iterfind(".//samlp:StatusCode", NS)]
    assert codes[1] == STATUS + sub
    assert _counts(fed)[0] == issued


def test_metadata_with_bad_certificate_is_reported_and_skipped(tmp_path: Path) -> None:
    good = OneLoginSp(1, "http://127.0.0.1:2", name="good")
    bad = OneLoginSp(3, "http://127.0.0.1:2", name="bad")
    (tmp_path / "good.xml").write_text(good.metadata())
    broken = re.sub(r"(<ds:X509Certificate>)MII", r"\1AAAMII", bad.metadata(), count=1)
    assert broken != bad.metadata()
    (tmp_path / "bad-cert.xml").write_text(broken)
    (tmp_path / "not-xml.xml").write_text("<md:EntityDescriptor")
    second = OneLoginSp(5, "http://127.0.0.1:2", name="second").metadata()
    half = re.sub(r"<\?xml[^>]*\?>", "", second) + re.sub(r"<\?xml[^>]*\?>", "", broken)
    (tmp_path / "half-broken.xml").write_text(
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{half}</md:EntitiesDescriptor>")
    loaded = load_metadata([tmp_path])
    assert set(loaded.sps) == {good.entity_id}, "nothing of a broken file is loaded"
    assert [p.split(":")[0] for p in loaded.problems] == ["bad-cert.xml", "half-broken.xml",
                                                          "not-xml.xml"]
    assert "certificate" in loaded.problems[0] and "certificate" in loaded.problems[1]


def test_live_idp_skips_metadata_with_bad_certificate(demo_keys_dir: Path,
                                                       tmp_path: Path) -> None:
    """The IdP starts, names the broken file, and treats its SP as unknown."""
    port = free_port()
    sp = OneLoginSp(free_port(), f"http://127.0.0.1:{port}", name="badcert")
    mdir = tmp_path / "metadata"
    mdir.mkdir()
    (mdir / "badcert.xml").write_text(
        re.sub(r"(<ds:X509Certificate>)MII", r"\1AAAMII", sp.metadata(), count=1))
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[mdir], audit="none")
    with live_idp(config, demo=True, port=port) as idp:
        [problem] = idp.components.extras["saml_metadata_problems"]
        assert problem.startswith("badcert.xml: ")
        xml = (f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_x1" '
               f'Version="2.0" IssueInstant="{instant(time.time())}"><saml:Issuer>'
               f'{sp.entity_id}</saml:Issuer></samlp:AuthnRequest>').encode()
        resp = requests.get(f"{idp.url}/saml/sso?" + urlencode(
            {"SAMLRequest": encode_redirect(xml)}), timeout=5, allow_redirects=False)
        assert resp.status_code == 400 and "unknown service provider" in resp.text
        assert not [r for r in idp.audit.records if r["eventName"] == "SamlAssertionIssued"]
