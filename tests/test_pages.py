"""What the pages show, through the Flask test client: the login page names the SP or client
that asked (from its metadata or registration only, escaped), the role picker groups roles by
account and names them, and a single role skips the picker only with the IdP's own form
(its CSRF token), with the assertion still accepted once.  The same pages in real Chromium, at
a desktop and a phone size, are in ``tests/test_pages_browser.py``."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.app import Components
from idp.audit import MemorySink
from idp.iam.model import Account
from idp.saml.metadata import parse_sp
from idp.web.sts import _by_account
from tests.helpers import config, login, make_app
from tests.saml.craft import authn_request, redirect_query

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/"
SP_ENTITY = "https://payroll.example/sp"
SP_ACS = "https://payroll.example/acs"
# a display name with markup: the login page must show it as text
SP_NAME = 'Payroll <script>alert("x")</script> & Co'
SP_METADATA = f"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
 xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" entityID="{SP_ENTITY}"><md:SPSSODescriptor
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:Extensions><mdui:UIInfo>
 <mdui:DisplayName xml:lang="de">Lohnbuchhaltung</mdui:DisplayName>
 <mdui:DisplayName xml:lang="en">{html.escape(SP_NAME)}</mdui:DisplayName>
 </mdui:UIInfo></md:Extensions>
 <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
 Location="{SP_ACS}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"""

Env = tuple[Flask, Components, MemorySink]


@pytest.fixture
def env(tmp_path: Path, demo_keys_dir: Path) -> Iterator[Env]:
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "payroll.xml").write_text(SP_METADATA)
    app, comps, sink = make_app(config(tmp_path, demo_keys_dir), demo=True)
    yield app, comps, sink
    comps.close()


def _asked_by(page: str) -> str | None:
    m = re.search(r'<strong id="asked-by-name">(.*?)</strong>', page, re.S)
    return m.group(1) if m else None


def _login_page(client: FlaskClient, start: str) -> str:
    """Follow ``start`` to the login page it sends a signed-out browser to."""
    r = client.get(start)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?"), r.status
    return str(client.get(r.headers["Location"]).get_data(as_text=True))


def _authorize_url() -> str:
    return "/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": "demo-web", "scope": "openid",
        "redirect_uri": "http://127.0.0.1:8400/callback", "state": "s", "nonce": "n",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})


def test_login_names_the_oidc_client_by_its_registered_name(env: Env) -> None:
    page = _login_page(env[0].test_client(), _authorize_url())
    assert "Sign in to continue to" in page
    assert _asked_by(page) == "Demo Web App"


def test_login_names_the_saml_sp_by_its_metadata_display_name_escaped(env: Env) -> None:
    """mdui:DisplayName, the English one of several (SAML Metadata UI §2.1.2), shown as
    text: the markup in it is escaped, never run."""
    query = redirect_query("SAMLRequest", authn_request(SP_ENTITY, None), None)
    page = _login_page(env[0].test_client(), "/saml/sso?" + query)
    shown = _asked_by(page)
    assert shown is not None and html.unescape(shown) == SP_NAME
    assert "<script>" not in page and "&lt;script&gt;" in shown


def test_login_names_the_builtin_aws_sp_for_idp_initiated_sign_in(env: Env) -> None:
    page = _login_page(env[0].test_client(),
                       "/saml/idp-initiated?sp=urn:amazon:webservices")
    assert _asked_by(page) == "AWS temporary credentials"


@pytest.mark.parametrize("next_path", [
    pytest.param("/saml/sso?resume=made-up", id="made-up SAML resume id names nobody"),
    pytest.param("/oauth2/authorize?resume=made-up", id="made-up OIDC resume id names nobody"),
    pytest.param("/oauth2/authorize?client_id=demo-web&client_name=Evil+Corp",
                 id="request parameters alone name nobody"),
    pytest.param("/account?resume=x", id="a resume id for another page names nobody"),
])
def test_login_names_nobody_without_a_parked_request(env: Env, next_path: str) -> None:
    page = env[0].test_client().get("/login?" + urlencode({"next": next_path}))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Sign in to continue" not in text


def _saml_post(client: FlaskClient, start: str) -> tuple[str, dict[str, str]]:
    """The IdP's auto-submitted SAML POST form: its action and fields."""
    r = client.get(start)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    page = r.get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post">', page)
    assert action
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def _assumed(sink: MemorySink) -> list[dict[str, Any]]:
    return [e for e in sink.records
            if e["eventName"] == "AssumeRoleWithSAML" and not e.get("errorCode")]


def test_single_role_skips_the_picker_with_the_idps_own_form(env: Env) -> None:
    """carol has ReadOnly only: the IdP's POST form (carrying this browser's CSRF token) goes
    straight to her credentials, the same session as choosing the role would give."""
    app, _, sink = env
    c = app.test_client()
    assert login(c, "carol", "carol-password").status_code == 303
    _, fields = _saml_post(c, "/saml/idp-initiated?sp=urn:amazon:webservices")
    assert set(fields) >= {"SAMLResponse", "csrf_token"}
    r = c.post("/federation/saml", data=fields)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="roles"' not in page
    assert re.search(r'id="arn">arn:aws:sts::111122223333:assumed-role/ReadOnly/carol', page)
    assert "export AWS_ACCESS_KEY_ID=ASIA" in page
    assert len(_assumed(sink)) == 1


def test_single_role_skip_does_not_accept_the_assertion_twice(env: Env) -> None:
    app, _, sink = env
    c = app.test_client()
    login(c, "carol", "carol-password")
    _, fields = _saml_post(c, "/saml/idp-initiated?sp=urn:amazon:webservices")
    assert c.post("/federation/saml", data=fields).status_code == 200
    again = c.post("/federation/saml", data=fields)
    assert again.status_code >= 400 and "AWS_ACCESS_KEY_ID" not in again.get_data(as_text=True)
    assert len(_assumed(sink)) == 1


@pytest.mark.parametrize("csrf_token", [
    pytest.param(None, id="no CSRF token: the picker, nothing assumed"),
    pytest.param("forged", id="a wrong CSRF token: the picker, nothing assumed"),
])
def test_single_role_without_this_browsers_csrf_token_shows_the_picker(
        env: Env, csrf_token: str | None) -> None:
    """A cross-site POST of someone's assertion must not assume a role on its own."""
    app, _, sink = env
    c = app.test_client()
    login(c, "carol", "carol-password")
    _, fields = _saml_post(c, "/saml/idp-initiated?sp=urn:amazon:webservices")
    data = {"SAMLResponse": fields["SAMLResponse"],
            **({"csrf_token": csrf_token} if csrf_token else {})}
    page = c.post("/federation/saml", data=data).get_data(as_text=True)
    assert 'id="roles"' in page and "AWS_ACCESS_KEY_ID" not in page
    assert 'class="role-name">ReadOnly</span>' in page
    assert not _assumed(sink)


def test_several_roles_show_the_picker_even_with_the_csrf_token(env: Env) -> None:
    app, _, sink = env
    c = app.test_client()
    login(c, "bob", "bob-password")
    _, fields = _saml_post(c, "/saml/idp-initiated?sp=urn:amazon:webservices")
    page = c.post("/federation/saml", data=fields).get_data(as_text=True)
    names = re.findall(r'class="role-name">([^<]+)</span>', page)
    assert sorted(names) == ["Developer", "ReadOnly"] and not _assumed(sink)


def test_csrf_token_is_never_posted_to_another_sp(env: Env) -> None:
    """Only the IdP's own consumer gets the browser's CSRF token in the SAML POST form."""
    c = env[0].test_client()
    login(c, "alice", "alice-password")
    query = redirect_query("SAMLRequest", authn_request(SP_ENTITY, None), None)
    action, fields = _saml_post(c, "/saml/sso?" + query)
    assert action == SP_ACS and "SAMLResponse" in fields and "csrf_token" not in fields


def test_role_picker_groups_roles_by_account_named_by_alias_and_role_name(env: Env) -> None:
    """Accounts in the order the assertion names them, with the alias configured for one;
    roles by their IAM name (a role path is not part of it), never the bare ARN."""
    app, comps, _ = env
    comps.iam.accounts[ACCOUNT] = Account(ACCOUNT, "demo-sandbox")
    other = "444455556666"
    with app.app_context():
        groups = _by_account([ROLE + "Admin", f"arn:aws:iam::{other}:role/team/Deploy",
                              ROLE + "ReadOnly"])
    assert [(g.id, g.alias) for g in groups] == [(ACCOUNT, "demo-sandbox"), (other, None)]
    assert [name for _, name in groups[0].roles] == ["Admin", "ReadOnly"]
    assert groups[1].roles == [(f"arn:aws:iam::{other}:role/team/Deploy", "Deploy")]


def _sp_display_name(extensions: str, organization: str = "") -> str | None:
    xml = (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
           f'xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" entityID="{SP_ENTITY}">'
           f'<md:SPSSODescriptor protocolSupportEnumeration='
           f'"urn:oasis:names:tc:SAML:2.0:protocol">{extensions}'
           f'<md:AssertionConsumerService Binding='
           f'"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{SP_ACS}"/>'
           f'</md:SPSSODescriptor>{organization}</md:EntityDescriptor>')
    return parse_sp(etree.fromstring(xml.encode()), "test.xml").display_name


UI = "<md:Extensions><mdui:UIInfo>{}</mdui:UIInfo></md:Extensions>"
ORG = ("<md:Organization><md:OrganizationName xml:lang='en'>payroll-inc</md:OrganizationName>"
       "<md:OrganizationDisplayName xml:lang='en'>Payroll Inc.</md:OrganizationDisplayName>"
       "<md:OrganizationURL xml:lang='en'>https://payroll.example/</md:OrganizationURL>"
       "</md:Organization>")


@pytest.mark.parametrize(("extensions", "organization", "expected"), [
    pytest.param(UI.format("<mdui:DisplayName xml:lang='fr'>Paie</mdui:DisplayName>"
                           "<mdui:DisplayName xml:lang='en'>Payroll</mdui:DisplayName>"), ORG,
                 "Payroll", id="mdui DisplayName, the English one, before the organization"),
    pytest.param(UI.format("<mdui:DisplayName xml:lang='fr'>Paie</mdui:DisplayName>"), "",
                 "Paie", id="mdui DisplayName in another language when no English one"),
    pytest.param("", ORG, "Payroll Inc.", id="OrganizationDisplayName without mdui"),
    pytest.param(UI.format("<mdui:DisplayName xml:lang='en'>  Pay\n  roll </mdui:DisplayName>"),
                 "", "Pay roll", id="white space collapsed"),
    pytest.param(UI.format("<mdui:DisplayName xml:lang='en'> </mdui:DisplayName>"), "", None,
                 id="an empty name is no name: the entity ID is shown"),
])
def test_sp_display_name_from_metadata(extensions: str, organization: str,
                                       expected: str | None) -> None:
    assert _sp_display_name(extensions, organization) == expected
