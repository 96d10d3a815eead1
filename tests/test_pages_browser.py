"""The pages a first user meets, in real headless Chromium at a desktop (1280×800) and a phone
(390×844) size: none is wider than the screen; Allow and Deny sit side by side with Deny the
secondary action; the credentials page copies each value; the role picker names the account
and the roles and is skipped for a single role; the login page names who asked; lockout and
sign-out say so.  Every page is screenshotted into pytest's temporary folder (never the repo)
for a person to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from idp.demo import demo_config
from idp.iam.model import Account
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.browser
SIZES = [pytest.param((1280, 800), id="desktop 1280x800"),
         pytest.param((390, 844), id="phone 390x844")]
ACCOUNT = "111122223333"
AWS_SP = "/saml/idp-initiated?sp=urn:amazon:webservices"
FAILURES_BEFORE_LOCKOUT = 3




@pytest.fixture
def idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """The demo, with an alias for its account and a lockout after a few failures."""
    port = free_port()
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[tmp_path / "md"],
                         audit="none")
    config = config.model_copy(update={"login": config.login.model_copy(
        update={"account_failures_per_hour": FAILURES_BEFORE_LOCKOUT})})
    with live_idp(config, demo=True, port=port) as live:
        # the demo's account as if `iam.accounts` gave it an alias
        live.components.iam.accounts[ACCOUNT] = Account(ACCOUNT, "demo-sandbox")
        yield live


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def _context(chromium: Browser, size: tuple[int, int], url: str) -> BrowserContext:
    context = chromium.new_context(viewport={"width": size[0], "height": size[1]})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    return context


def _fits(page: Page, shots: Path, name: str, size: tuple[int, int]) -> None:
    """Screenshot the page, and check that nothing makes it scroll sideways."""
    page.screenshot(path=str(shots / f"{name}-{size[0]}x{size[1]}.png"), full_page=True)
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{name} overflows at {size}: {widths}"


def _sign_in(page: Page, user: str, password: str | None = None) -> None:
    page.fill("#username", user)
    page.fill("#password", password or f"{user}-password")
    page.click("#sign-in")


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box


def _style(page: Page, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e)['{prop}']"))


def _allow_and_deny(page: Page, allow: str, size: tuple[int, int]) -> None:
    """Deny is a secondary button beside Allow: same row (at 1280) and height, within the
    screen, and not in Allow's filled primary style."""
    a, d = _box(page, allow), _box(page, "#deny")
    assert abs(a["height"] - d["height"]) <= 2, (a, d)
    if size[0] >= 1280:
        assert abs(a["y"] - d["y"]) <= 2 and d["x"] > a["x"] + a["width"], (a, d)
        assert abs(a["width"] - d["width"]) <= 2, (a, d)
    assert max(a["x"] + a["width"], d["x"] + d["width"]) <= size[0]
    assert _style(page, "#deny", "backgroundColor") != _style(page, allow, "backgroundColor")
    assert _style(page, "#deny", "color") != _style(page, allow, "color")


def _authorize_url(base: str) -> str:
    return base + "/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": "demo-web", "scope": "openid profile roles",
        "redirect_uri": "http://127.0.0.1:8400/callback", "state": "s", "nonce": "n",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})


@pytest.mark.parametrize("size", SIZES)
def test_login_names_the_client_and_consent_deny_is_secondary_beside_allow(
        chromium: Browser, idp: LiveIdp, shots: Path, size: tuple[int, int]) -> None:
    context = _context(chromium, size, idp.url)
    try:
        page = context.new_page()
        page.goto(_authorize_url(idp.url))
        assert page.inner_text("#asked-by") == "Sign in to continue to Demo Web App"
        _fits(page, shots, "login", size)
        _sign_in(page, "alice")
        page.wait_for_selector("#deny")
        _fits(page, shots, "consent", size)
        _allow_and_deny(page, "#allow", size)
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_device_page_deny_is_secondary_beside_allow(
        chromium: Browser, idp: LiveIdp, shots: Path, size: tuple[int, int]) -> None:
    started = requests.post(idp.url + "/oauth2/device_authorization",
                            data={"client_id": "demo-cli", "scope": "openid"}, timeout=10)
    assert started.status_code == 200, started.text
    context = _context(chromium, size, idp.url)
    try:
        page = context.new_page()
        page.goto(started.json()["verification_uri_complete"])
        _sign_in(page, "bob")
        page.wait_for_selector("#continue")
        _fits(page, shots, "device-code", size)
        page.click("#continue")
        page.wait_for_selector("#deny")
        _fits(page, shots, "device-confirm", size)
        _allow_and_deny(page, "#approve", size)
    finally:
        context.close()


def _role_names(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#roles .role-name").all_inner_texts()]


@pytest.mark.parametrize("size", SIZES)
def test_role_picker_shows_account_alias_and_role_names_not_arns(
        chromium: Browser, idp: LiveIdp, shots: Path, size: tuple[int, int]) -> None:
    context = _context(chromium, size, idp.url)
    try:
        page = context.new_page()
        page.goto(idp.url + AWS_SP)
        assert page.inner_text("#asked-by-name") == "AWS temporary credentials"
        _sign_in(page, "alice")
        page.wait_for_url(idp.url + "/federation/saml")
        _fits(page, shots, "role-picker", size)
        legend = page.inner_text(f"#account-{ACCOUNT} legend")
        assert "demo-sandbox" in legend and ACCOUNT in legend
        assert sorted(_role_names(page)) == ["Admin", "Developer", "ReadOnly"]
        assert "arn:aws" not in page.inner_text("#roles")
    finally:
        context.close()


def _copied(page: Page, button: str) -> str:
    page.click(button)
    page.locator(button + "[data-state=copied]").wait_for()
    return str(page.evaluate("navigator.clipboard.readText()"))


@pytest.mark.parametrize("size", SIZES)
def test_credentials_fit_their_card_and_each_copy_button_copies_its_value(
        chromium: Browser, idp: LiveIdp, shots: Path, size: tuple[int, int]) -> None:
    context = _context(chromium, size, idp.url)
    try:
        page = context.new_page()
        page.goto(idp.url + AWS_SP)
        _sign_in(page, "alice")
        page.wait_for_url(idp.url + "/federation/saml")
        page.check(f'input[value="arn:aws:iam::{ACCOUNT}:role/Developer"]')
        page.click("#assume")
        page.wait_for_selector("#exports")
        _fits(page, shots, "credentials", size)
        card = _box(page, "section.card")
        for box in ("#session-token", "#exports", "#credentials-file", "#arn"):
            b = _box(page, box)
            assert b["x"] >= card["x"] and b["x"] + b["width"] <= card["x"] + card["width"], box
        exports = dict(re.findall(r"export (AWS_\w+)=(\S+)", page.inner_text("#exports")))
        assert exports["AWS_SESSION_TOKEN"] == page.inner_text("#session-token")
        for target, value in (("access-key-id", exports["AWS_ACCESS_KEY_ID"]),
                              ("secret-access-key", exports["AWS_SECRET_ACCESS_KEY"]),
                              ("session-token", exports["AWS_SESSION_TOKEN"])):
            assert _copied(page, f'button[data-copy="{target}"]') == value, target
        block = _copied(page, 'button[data-copy="exports"]')
        assert block == page.eval_on_selector("#exports", "e => e.textContent")
        assert block.splitlines()[0] == f"export AWS_ACCESS_KEY_ID={exports['AWS_ACCESS_KEY_ID']}"
        assert "aws_session_token = " + exports["AWS_SESSION_TOKEN"] in _copied(
            page, 'button[data-copy="credentials-file"]')
    finally:
        context.close()


def test_copy_falls_back_to_select_and_copy_when_the_clipboard_api_refuses(
        chromium: Browser, idp: LiveIdp) -> None:
    """A browser that refuses ``navigator.clipboard.writeText`` (permissions, an older
    browser): the button selects the value and copies it with ``execCommand("copy")``."""
    context = _context(chromium, (390, 844), idp.url)
    context.add_init_script("navigator.clipboard.writeText = "
                            "() => Promise.reject(new Error('refused'));")
    try:
        page = context.new_page()
        page.goto(idp.url + AWS_SP)
        _sign_in(page, "carol")
        page.wait_for_selector("#exports")
        secret = page.inner_text("#secret-access-key")
        assert _copied(page, 'button[data-copy="secret-access-key"]') == secret
        assert page.evaluate("window.getSelection().toString()") == secret
    finally:
        context.close()


def test_credentials_without_javascript_show_no_dead_buttons_and_values_stay_selectable(
        chromium: Browser, idp: LiveIdp) -> None:
    context = chromium.new_context(java_script_enabled=False, viewport={"width": 390,
                                                                        "height": 844})
    try:
        page = context.new_page()
        page.goto(idp.url + AWS_SP)
        _sign_in(page, "carol")
        page.wait_for_selector("#saml-post")
        page.click("#saml-post button[type=submit]")  # what saml_post.js does otherwise
        page.wait_for_selector("#exports")
        assert not page.locator("button.copy").first.is_visible()
        assert page.locator("button.copy").count() == 5
        assert _style(page, "#secret-access-key", "userSelect") == "all"  # one click selects
        assert page.inner_text("#access-key-id").startswith("ASIA")
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_single_role_skips_the_picker_straight_to_credentials(
        chromium: Browser, idp: LiveIdp, shots: Path, size: tuple[int, int]) -> None:
    context = _context(chromium, size, idp.url)
    try:
        page = context.new_page()
        page.goto(idp.url + AWS_SP)
        _sign_in(page, "carol")
        page.wait_for_selector("#exports")
        assert page.locator("#roles").count() == 0
        assert re.search(r":assumed-role/ReadOnly/carol", page.inner_text("#arn"))
        _fits(page, shots, "single-role-credentials", size)
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_lockout_says_how_long_and_sign_out_says_so(
        chromium: Browser, idp: LiveIdp, shots: Path, size: tuple[int, int]) -> None:
    context = _context(chromium, size, idp.url)
    try:
        page = context.new_page()
        page.goto(idp.url + "/account")
        _sign_in(page, "alice")
        page.wait_for_url(idp.url + "/account")
        page.click("#sign-out")
        page.wait_for_url(idp.url + "/login?signed_out=1")
        assert page.inner_text("#login-notice") == "You are signed out."
        _fits(page, shots, "signed-out", size)
        for _ in range(FAILURES_BEFORE_LOCKOUT + 1):
            _sign_in(page, "bob", "wrong-password")
            page.wait_for_selector("#login-error")
        error = page.inner_text("#login-error")
        assert re.fullmatch(r"Too many failed attempts\. Try again in \d+ minutes?\.", error)
        _fits(page, shots, "lockout", size)
    finally:
        context.close()
