"""The demo command, end to end: `idp demo` starts, alice signs in through the form in real
headless Chromium, sees her groups on /account, and signs out."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.servers import CHROMIUM_ARGS, free_port, require_binary, wait_for_port


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`idp demo` as a user runs it, in a scratch folder, on a free port."""
    work = tmp_path_factory.mktemp("demo")
    port = free_port()
    idp = Path(sys.executable).parent / "idp"
    log = work / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(idp), "demo", "--port", str(port)], cwd=work,
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_demo_prints_urls_and_logins_and_generates_keys(demo_server: tuple[str, Path]) -> None:
    url, log = demo_server
    assert requests.get(url + "/readyz", timeout=5).json()["status"] == "ok"
    out = log.read_text()
    assert f"{url}/login" in out and "alice / alice-password" in out
    assert (log.parent / "keys" / "keys.json").exists()


@pytest.mark.browser
def test_alice_signs_in_sees_groups_and_signs_out_in_chromium(
        demo_server: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = demo_server
    chromium = require_binary("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/account")
            assert "/login" in page.url  # no session yet
            page.fill("#username", "alice")
            page.fill("#password", "alice-password")
            page.click("#sign-in")
            page.wait_for_url(url + "/account")
            groups = page.inner_text("#groups")
            assert "admins" in groups and "engineering" in groups
            page.screenshot(path=str(Path(_).parent / "account.png"))
            page.click("#sign-out")
            page.wait_for_url(url + "/login?signed_out=1")
            assert page.inner_text("#login-notice") == "You are signed out."
            page.goto(url + "/account")
            assert "/login" in page.url  # the session is gone
        finally:
            browser.close()


@pytest.mark.browser
def test_wrong_password_shows_generic_error_in_chromium(demo_server: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = demo_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_binary("chromium"),
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/login")
            page.fill("#username", "bob")
            page.fill("#password", "not-bobs-password")
            page.click("#sign-in")
            assert page.inner_text("#login-error") == "Invalid username or password."
        finally:
            browser.close()
