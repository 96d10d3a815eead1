"""Passkeys (WebAuthn) in real headless Chromium with a virtual authenticator (CDP
``WebAuthn.addVirtualAuthenticator``): bob registers one at /account/mfa, signs out, and signs
in with password + passkey; a tampered assertion and a replayed challenge are refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp.demo import demo_config
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import CHROMIUM_ARGS, free_port, require_binary

pytestmark = pytest.mark.browser


@pytest.fixture
def localhost_idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """The demo at http://localhost:PORT (a WebAuthn RP ID is a domain, not an address)."""
    port = free_port()
    config = demo_config(port, host="localhost", keys_dir=demo_keys_dir,
                         metadata_dirs=[tmp_path / "md"], audit="none")
    with live_idp(config, demo=True, port=port) as idp:
        yield idp


@pytest.fixture
def page(localhost_idp: LiveIdp) -> Iterator[tuple[Any, str]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_binary("chromium"),
                                    args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page()
            cdp = pg.context.new_cdp_session(pg)
            cdp.send("WebAuthn.enable")
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True}})
            yield pg, localhost_idp.config.issuer
        finally:
            browser.close()


def sign_in(pg: Any, url: str) -> None:
    pg.goto(url + "/login")
    pg.fill("#username", "bob")
    pg.fill("#password", "bob-password")
    pg.click("#sign-in")


def test_passkey_registered_and_used_through_chromium(page: tuple[Any, str],
                                                      localhost_idp: LiveIdp) -> None:
    pg, url = page
    sign_in(pg, url)
    pg.wait_for_url(url + "/account")
    pg.goto(url + "/account/mfa")
    pg.click("#add-passkey")
    pg.fill("#name", "laptop")
    pg.click("#create-passkey")
    pg.wait_for_selector("#recovery-codes")
    assert localhost_idp.components.mfa is not None
    [factor] = localhost_idp.components.mfa.enrolment("bob").factors
    assert factor.kind == "webauthn" and factor.name == "laptop"
    pg.click("#done")
    pg.goto(url + "/account")
    pg.click("#sign-out")

    sign_in(pg, url)
    pg.wait_for_url(re.compile(r".*/login/mfa\?next=.*"))
    pg.click("#use-passkey")
    pg.wait_for_url(url + "/account")
    assert "used in this session" in pg.content()
    sid = next(c["value"] for c in pg.context.cookies() if c["name"] == "idp_session")
    sess = localhost_idp.components.sessions.get(sid)
    assert sess is not None and sess.amr[-1] == "mfa" and sess.amr[1] in ("hwk", "swk")
    count = localhost_idp.components.mfa.enrolment("bob").factors[0].data["sign_count"]
    assert count >= 1  # the virtual authenticator counts; a counter going back is refused


def test_passkey_assertion_replayed_or_tampered_is_refused(page: tuple[Any, str],
                                                           localhost_idp: LiveIdp) -> None:
    pg, url = page
    sign_in(pg, url)
    pg.wait_for_url(url + "/account")
    pg.goto(url + "/account/mfa")
    pg.click("#add-passkey")
    pg.click("#create-passkey")
    pg.wait_for_selector("#recovery-codes")
    pg.goto(url + "/account")
    pg.click("#sign-out")
    sign_in(pg, url)
    pg.wait_for_url(re.compile(r".*/login/mfa\?next=.*"))
    # capture the assertion the page would post, then post it twice
    captured: dict[str, str] = {}

    def grab(route: Any) -> None:
        captured["body"] = route.request.post_data or ""
        route.abort()

    pg.route("**/login/mfa", lambda route: grab(route) if route.request.method == "POST"
             else route.continue_())
    pg.click("#use-passkey")
    pg.wait_for_timeout(500)
    pg.unroute("**/login/mfa")
    from urllib.parse import parse_qs

    form = {k: v[0] for k, v in parse_qs(captured["body"]).items()}
    cred = json.loads(form["credential"])
    req = pg.context.request
    tampered = dict(cred, response=dict(cred["response"], signature=cred["response"][
        "signature"][:-4] + ("AAAA" if not cred["response"]["signature"].endswith("AAAA")
                             else "BBBB")))
    r = req.post(url + "/login/mfa", form={**form, "credential": json.dumps(tampered)},
                 max_redirects=0)
    assert r.status == 401
    r = req.post(url + "/login/mfa", form=form, max_redirects=0)
    assert r.status == 401  # the challenge was spent by the tampered try
