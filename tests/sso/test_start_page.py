"""The access portal page ``/start`` (the ``sso_start_url``): the person's accounts and roles,
credentials through the same path as ``GetRoleCredentials``, linked from ``/account``."""

from __future__ import annotations

import re

import requests

from tests.fixtures.live import LiveIdp
from tests.oidc import rp
from tests.sso import kit


def _browser(url: str, user: str) -> requests.Session:
    s = requests.Session()
    rp.login(s, url, user)
    return s


def _ask(s: requests.Session, url: str, role: str, csrf: str | None = None) -> requests.Response:
    page = s.get(url + "/start", timeout=5).text
    return s.post(url + "/start", timeout=5, data={
        "csrf_token": csrf if csrf is not None else rp.form_value(rp._CSRF, page),
        "account_id": kit.ACCT, "role_name": role})


def test_start_lists_exactly_the_mapped_roles_and_is_linked_from_account(
        demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    for user, roles in kit.MAPPING.items():
        s = _browser(url, user)
        assert 'href="/start"' in s.get(url + "/account", timeout=5).text
        page = s.get(url + "/start", timeout=5).text
        shown = set(re.findall(rf'id="role-{kit.ACCT}-(\w+)"', page))
        assert shown == roles
        assert "/saml/idp-initiated?sp=urn:amazon:webservices" in page
        assert f"{url}/start" in page


def test_start_gives_credentials_for_a_mapped_role_only(demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    alice = _browser(url, "alice")
    r = _ask(alice, url, "Developer")
    assert r.status_code == 200 and "export AWS_ACCESS_KEY_ID=ASIA" in r.text
    carol = _browser(url, "carol")
    r = _ask(carol, url, "Admin")
    assert r.status_code == 403 and "AWS_ACCESS_KEY_ID" not in r.text
    r = _ask(carol, url, "ReadOnly", csrf="forged")
    assert r.status_code == 400 and "AWS_ACCESS_KEY_ID" not in r.text
    issued = [e for e in demo_idp.audit.records
              if e["eventName"] == "GetRoleCredentials" and not e.get("errorCode")]
    assert len(issued) == 1 and issued[0]["additionalEventData"]["assumedRoleArn"] == \
        f"arn:aws:sts::{kit.ACCT}:assumed-role/Developer/alice"


def test_start_needs_a_signed_in_person(demo_idp: LiveIdp) -> None:
    r = requests.get(demo_idp.url + "/start", allow_redirects=False, timeout=5)
    assert r.status_code in (302, 303) and "/login?next=%2Fstart" in r.headers["Location"]
