"""The account console: revoking an OIDC client's access ends my refresh tokens for it, "sign
out other sessions" ends my other IdP sessions and keeps this one, the AWS roles get
credentials in one click through the access portal, and every change needs the form's CSRF
token and is audited."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.fixtures.live import LiveIdp
from tests.oidc import rp
from tests.security.test_access_ends import _signed_in, _start, world  # noqa: F401
from tests.security.test_next_token import CLI, World, refresh


def _csrf(browser: requests.Session, url: str) -> str:
    page = browser.get(f"{url}/account", timeout=10).text
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no csrf_token on /account"
    return m.group(1)


def test_revoking_a_client_deletes_the_consent_and_ends_its_refresh_tokens(
        world: World) -> None:  # noqa: F811
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        browser = requests.Session()
        _, tokens, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=browser)
        page = browser.get(f"{idp.url}/account", timeout=10).text
        assert 'id="client-demo-cli"' in page
        r = browser.post(f"{idp.url}/account/applications/revoke",
                         data={"client_id": "demo-cli"}, allow_redirects=False, timeout=10)
        assert r.status_code == 400, "a revoke without the CSRF token is refused"
        assert refresh(idp.url, tokens["refresh_token"]).status_code == 200
        # the refresh above rotated the token: get the family's current one
        _, tokens, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=browser)

        r = browser.post(f"{idp.url}/account/applications/revoke",
                         data={"client_id": "demo-cli", "csrf_token": _csrf(browser, idp.url)},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 303
        assert 'id="client-demo-cli"' not in browser.get(f"{idp.url}/account", timeout=10).text
        state = idp.components.extras["oidc"].core.state
        assert state.consented("demo-cli", idp.components.sessions.of_person("carol")[0][1]
                               .subject) == set()
        r = refresh(idp.url, tokens["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        assert _signed_in(browser, idp.url), "revoking an application keeps my IdP session"
        [event] = [e for e in idp.audit.records if e["eventName"] == "RevokeApplication"]
        assert event["userIdentity"]["userName"] == "carol"
        # consenting again later starts a family the revocation does not touch
        time.sleep(1.1)
        _, again, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=browser)
        assert refresh(idp.url, again["refresh_token"]).status_code == 200


def test_revoking_a_client_leaves_other_people_alone(world: World) -> None:  # noqa: F811
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        carol = requests.Session()
        rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=carol)
        _, bob, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob")
        r = carol.post(f"{idp.url}/account/applications/revoke",
                       data={"client_id": "demo-cli", "csrf_token": _csrf(carol, idp.url)},
                       allow_redirects=False, timeout=10)
        assert r.status_code == 303
        assert refresh(idp.url, bob["refresh_token"]).status_code == 200


def test_sign_out_other_sessions_ends_them_and_keeps_this_one(world: World) -> None:  # noqa: F811
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        laptop, phone = requests.Session(), requests.Session()
        laptop.headers["User-Agent"] = "Laptop-Browser/1.0"
        phone.headers["User-Agent"] = "Phone-Browser/2.0"
        rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=laptop)
        rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=phone)
        page = laptop.get(f"{idp.url}/account", timeout=10).text
        assert page.count('class="idp-session') == 2
        assert "Laptop-Browser/1.0" in page and "Phone-Browser/2.0" in page

        r = laptop.post(f"{idp.url}/account/sessions/sign-out-others", data={},
                        allow_redirects=False, timeout=10)
        assert r.status_code == 400 and _signed_in(phone, idp.url), "CSRF token required"

        r = laptop.post(f"{idp.url}/account/sessions/sign-out-others",
                        data={"csrf_token": _csrf(laptop, idp.url)}, allow_redirects=False,
                        timeout=10)
        assert r.status_code == 303 and r.headers["Location"].endswith("signed_out=1")
        assert not _signed_in(phone, idp.url)
        assert _signed_in(laptop, idp.url)
        assert laptop.get(f"{idp.url}/account", timeout=10).text.count('class="idp-session') == 1
        [event] = [e for e in idp.audit.records if e["eventName"] == "SignOutOtherSessions"]
        assert event["additionalEventData"]["sessionsEnded"] == 1


def test_sign_out_others_does_not_touch_another_persons_sessions(
        world: World) -> None:  # noqa: F811
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        carol, bob = requests.Session(), requests.Session()
        rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=carol)
        rp.code_flow(idp.url, "demo-cli", CLI, user="bob", browser=bob)
        carol.post(f"{idp.url}/account/sessions/sign-out-others",
                   data={"csrf_token": _csrf(carol, idp.url)}, timeout=10)
        assert _signed_in(bob, idp.url) and _signed_in(carol, idp.url)


def test_aws_role_gets_credentials_in_one_click_through_the_portal(
        demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    browser = requests.Session()
    rp.code_flow(url, "demo-cli", CLI, user="carol", browser=browser)
    page = browser.get(f"{url}/account", timeout=10).text
    form = re.search(r'<li id="aws-role-(\d+)-ReadOnly">.*?</form>', page, re.S)
    assert form, "the ReadOnly role is listed with its button"
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0)))
    assert 'action="/start"' in form.group(0)
    r = browser.post(f"{url}/start", data=fields, timeout=10)
    assert r.status_code == 200 and "export AWS_SESSION_TOKEN=" in r.text


def test_saml_service_providers_offer_idp_initiated_sign_in(world: World) -> None:  # noqa: F811
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        browser = requests.Session()
        rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=browser)
        page = browser.get(f"{idp.url}/account", timeout=10).text
        assert 'href="/saml/idp-initiated?sp=urn%3Aamazon%3Awebservices"' in page
        r = browser.get(f"{idp.url}/saml/idp-initiated",
                        params={"sp": "urn:amazon:webservices"}, timeout=10)
        assert r.status_code == 200 and 'name="SAMLResponse"' in r.text


def test_revoking_an_unknown_client_changes_nothing(world: World) -> None:  # noqa: F811
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        browser = requests.Session()
        _, tokens, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="carol", browser=browser)
        r = browser.post(f"{idp.url}/account/applications/revoke",
                         data={"client_id": "no-such-client",
                               "csrf_token": _csrf(browser, idp.url)},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 303
        assert 'id="client-demo-cli"' in browser.get(f"{idp.url}/account", timeout=10).text
        assert refresh(idp.url, tokens["refresh_token"]).status_code == 200
        assert not [e for e in idp.audit.records if e["eventName"] == "RevokeApplication"]


@pytest.mark.parametrize("path", [
    pytest.param("/account/applications/revoke", id="revoke-application"),
    pytest.param("/account/sessions/sign-out-others", id="sign-out-others"),
])
def test_console_posts_without_a_session_go_to_the_login_page(demo_idp: LiveIdp,
                                                               path: str) -> None:
    r = requests.post(f"{demo_idp.url}{path}", data={"client_id": "demo-cli"},
                      allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303) and "/login" in r.headers["Location"]
