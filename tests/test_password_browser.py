"""Changing one's password in headless Chromium, against the file directory and against slapd
(RFC 3062 Password Modify), then signing in with the new password; the strength meter and
the unmet rules update while typing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from idp.config import Config, parse_config
from idp.demo import USERS_FILE
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.fixtures.slapd import Slapd

pytestmark = pytest.mark.browser




def _config(port: int, keys: Path, tmp: Path, directory: dict[str, object]) -> Config:
    return parse_config({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "s" * 40,
        "store": {"url": "memory://"}, "directory": directory,
        "keys": {"dir": str(keys), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(tmp / "metadata")]})


def _sign_in(page: Page, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/login?reauth=1")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_load_state()


def _change_in_browser(page: Page, base: str, user: str, old: str, new: str) -> None:
    _sign_in(page, base, user, old)
    page.click("#change-password-link")
    page.fill("#current_password", old)
    page.fill("#new_password", f"{user}1")  # short, their name: the meter says so at once
    page.locator("#unmet li", has_text="at least 8 characters").wait_for()
    page.locator("#unmet li", has_text="your name").wait_for()
    page.fill("#new_password", new)
    page.locator("#strength-word", has_text=re.compile("good|strong")).wait_for()
    page.locator("#unmet li").first.wait_for(state="detached")
    page.fill("#confirm_password", new)
    page.click("#change-password")
    page.wait_for_url("**/account?password=changed")


def _check(idp: LiveIdp, chromium: Browser, user: str, old: str, new: str) -> None:
    context = chromium.new_context()
    page = context.new_page()
    _change_in_browser(page, idp.url, user, old, new)
    context.close()
    fresh = chromium.new_context().new_page()
    _sign_in(fresh, idp.url, user, old)
    assert "Invalid username or password" in fresh.content()
    _sign_in(fresh, idp.url, user, new)
    assert fresh.url.endswith("/account") and user in fresh.inner_text("#username")
    fresh.context.close()


def test_password_change_in_chromium_file_directory(chromium: Browser, demo_keys_dir: Path,
                                                    tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    shutil.copyfile(USERS_FILE, users)
    port = free_port()
    config = _config(port, demo_keys_dir, tmp_path,
                     {"type": "file", "file": {"path": str(users)}})
    with live_idp(config, port=port) as idp:
        _check(idp, chromium, "bob", "bob-password", "quiet-harbour-violet")


def test_password_change_in_chromium_slapd_password_modify(
        chromium: Browser, slapd_ppolicy: Slapd, demo_keys_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    ldap = slapd_ppolicy.ldap_config().model_dump(mode="json", exclude_none=True)
    config = _config(port, demo_keys_dir, tmp_path, {"type": "ldap", "ldap": ldap})
    with live_idp(config, port=port) as idp:
        _check(idp, chromium, "bob", "bob-password", "quiet-harbour-violet")
