"""SP-initiated SSO with real, independent SPs over HTTP; IdP-initiated SSO to the built-in
AWS-style SP; single logout across two SPs; the IdP's metadata."""

from __future__ import annotations

import base64
import re

import pytest
import requests
import xmlsec
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.saml.xml import NS
from tests.saml.conftest import Federation

ACCOUNT = "arn:aws:iam::111122223333"
PROVIDER = f"{ACCOUNT}:saml-provider/demo-idp"
AWS = "https://aws.amazon.com/SAML/Attributes/"
ALICE_ROLES = {f"{ACCOUNT}:role/{r},{PROVIDER}" for r in ("Admin", "Developer", "ReadOnly")}


def issued(fed: Federation) -> list[dict[str, object]]:
    return [r for r in fed.idp.audit.records if r["eventName"] == "SamlAssertionIssued"]


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_onelogin_sp_completes_sso_and_reads_aws_roles(federation: Federation,
                                                        binding: str) -> None:
    """python3-saml (strict: signature, audience, recipient, time window, InResponseTo)."""
    b = federation.browser()
    resp = b.go(f"{federation.onelogin.base}/login?binding={binding}&relay=/after")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    attrs = body["attributes"]
    assert set(attrs[AWS + "Role"]) == ALICE_ROLES
    assert attrs[AWS + "RoleSessionName"] == ["alice@example.org"]
    assert attrs[AWS + "SessionDuration"] == ["3600"]  # Admin's MaxSessionDuration caps it
    assert attrs["urn:oid:1.3.6.1.4.1.5923.1.5.1.1"] == ["admins", "engineering"]
    assert body["relay_state"] == ("/after" if binding == "redirect" else "post-relay")
    assert any("/login" in r.url for r in b.seen), "alice went through the login form"
    [rec] = issued(federation)
    assert rec["additionalEventData"]["serviceProvider"] == federation.onelogin.entity_id
    assert rec["additionalEventData"]["sessionIndex"] == body["session_index"]


def test_force_authn_makes_alice_sign_in_again(federation: Federation) -> None:
    b = federation.browser()
    assert b.go(federation.onelogin.base + "/login").status_code == 200
    assert b.go(federation.onelogin.base + "/login").status_code == 200  # SSO: no form
    logins = [r for r in b.seen if r.request.method == "POST" and r.url.endswith("/login")]
    assert len(logins) == 1
    assert b.go(federation.onelogin.base + "/login?force=1").status_code == 200
    logins = [r for r in b.seen if r.request.method == "POST" and r.url.endswith("/login")]
    assert len(logins) == 2
    assert len(issued(federation)) == 3


def test_persistent_name_id_is_pairwise_and_stable(federation: Federation) -> None:
    first = federation.browser().go(federation.onelogin.base + "/login").json()["name_id"]
    again = federation.browser().go(federation.onelogin.base + "/login").json()["name_id"]
    other = federation.browser().go(federation.onelogin2.base + "/login").json()["name_id"]
    assert first == again != other


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_pysaml2_sp_completes_sso(federation: Federation, binding: str) -> None:
    resp = federation.browser("bob", "bob-password").go(
        f"{federation.pysaml2.base}/login?binding={binding}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["audience"] == federation.pysaml2.entity_id
    roles = {v for k, vals in body["attributes"].items() if k.endswith("Role") for v in vals}
    assert roles == {f"{ACCOUNT}:role/{r},{PROVIDER}" for r in ("Developer", "ReadOnly")}
    assert body["relay_state"] == "pysaml2-relay"


def test_encrypted_assertion_is_decrypted_by_onelogin(federation: Federation) -> None:
    body = federation.browser().go(federation.encrypted.base + "/login").json()
    assert body["encrypted"] is True
    assert body["enc_algs"] == ["http://www.w3.org/2009/xmlenc11#aes256-gcm",
                                "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"]
    assert set(body["attributes"][AWS + "Role"]) == ALICE_ROLES
    [rec] = issued(federation)
    assert rec["additionalEventData"]["encrypted"] is True


def _idp_cert(fed: Federation) -> str:
    return fed.idp.components.keys.active("RS256").cert_pem


def test_idp_initiated_sso_to_builtin_aws_sp(federation: Federation) -> None:
    """The assertion POSTed to /federation/saml is what AssumeRoleWithSAML accepts."""
    idp = federation.idp
    action, fields = federation.browser().saml_form(
        f"{idp.url}/saml/idp-initiated?sp=urn:amazon:webservices&RelayState=console")
    assert action == idp.url + "/federation/saml"
    assert fields["RelayState"] == "console"
    xml = base64.b64decode(fields["SAMLResponse"])
    assert OneLogin_Saml2_Utils.validate_sign(xml, _idp_cert(federation))
    root = etree.fromstring(xml)
    assertion = root.find("saml:Assertion", NS)
    assert assertion is not None
    # the assertion's own signature holds on its own (what the STS will check)
    alone = etree.fromstring(etree.tostring(assertion))
    xmlsec.tree.add_ids(alone, ["ID"])
    assert OneLogin_Saml2_Utils.validate_node_sign(alone.find("ds:Signature", NS), alone,
                                                   _idp_cert(federation), raise_exceptions=True)
    assert root.get("InResponseTo") is None
    aud = assertion.find("saml:Conditions/saml:AudienceRestriction/saml:Audience", NS)
    assert aud is not None and aud.text == "urn:amazon:webservices"
    scd = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData",
                         NS)
    assert scd is not None and scd.get("Recipient") == idp.url + "/federation/saml"
    values = {a.get("Name"): [v.text for v in a.findall("saml:AttributeValue", NS)]
              for a in assertion.iterfind(".//saml:Attribute", NS)}
    assert set(values[AWS + "Role"]) == ALICE_ROLES
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", values[AWS + "RoleSessionName"][0], re.ASCII)
    model = idp.components.iam
    cap = min(model.role(r.split(",")[0]).max_session_duration for r in values[AWS + "Role"])
    assert 900 <= int(values[AWS + "SessionDuration"][0]) <= cap
    assert values[AWS + "SourceIdentity"] == ["alice"]


def test_idp_initiated_refused_for_sp_that_does_not_allow_it(federation: Federation) -> None:
    resp = federation.browser().go(
        f"{federation.idp.url}/saml/idp-initiated?sp={federation.onelogin.entity_id}")
    assert resp.status_code == 403
    assert not issued(federation)


def test_single_logout_round_trip_with_two_sps(federation: Federation) -> None:
    b = federation.browser()
    assert b.go(federation.onelogin.base + "/login").status_code == 200
    assert b.go(federation.onelogin2.base + "/login").status_code == 200
    done = b.go(federation.onelogin.base + "/logout")
    assert done.status_code == 200 and done.json() == {"logged_out": True}, done.text
    urls = [r.url for r in b.seen]
    assert any(u.startswith(federation.onelogin2.base + "/sls") for u in urls), urls
    assert b.s.get(federation.idp.url + "/account", timeout=5,
                   allow_redirects=False).status_code in (302, 303)
    events = [r["eventName"] for r in federation.idp.audit.records]
    assert "SamlLogout" in events and "SamlLogoutResponse" in events


def test_idp_initiated_logout_tells_every_sp(federation: Federation) -> None:
    b = federation.browser()
    b.go(federation.onelogin.base + "/login")
    b.go(federation.onelogin2.base + "/login")
    page = b.s.get(federation.idp.url + "/account", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    done = b.follow(b.s.post(federation.idp.url + "/saml/slo",
                             data={"csrf_token": token.group(1)}, timeout=5))
    assert "Signed out" in done.text
    sls = [r.url for r in b.seen if "/sls" in r.url]
    assert len(sls) == 2


def test_metadata_publishes_next_and_active_certificates(federation: Federation) -> None:
    xml = requests.get(federation.idp.url + "/saml/metadata", timeout=5).content
    root = etree.fromstring(xml)
    certs = {c.text for c in root.iterfind(".//ds:X509Certificate", NS)}
    keys = federation.idp.components.keys
    assert certs == {k.cert_b64 for k in keys.published(("next", "active")) if k.alg == "RS256"}
    assert len(certs) == 2
    bindings = {(e.tag.split("}")[1], e.get("Binding").rsplit(":", 1)[1])
                for e in root.iterfind(".//md:IDPSSODescriptor/*[@Binding]", NS)}
    assert bindings == {(s, b) for s in ("SingleSignOnService", "SingleLogoutService")
                        for b in ("HTTP-Redirect", "HTTP-POST")}
