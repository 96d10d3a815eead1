"""``idp login`` against a live demo IdP, the browser step done by headless Chromium: PKCE on
a loopback port, and the device code approved through the /device page; then role credentials
for two roles from that one login, the cache, renewal, and the non-interactive refusal."""

from __future__ import annotations

import json
import re
import stat
import time
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import Browser

from idp.client import cli as client_cli
from tests.client.kit import ClientEnv
from tests.fixtures.live import LiveIdp

pytestmark = pytest.mark.browser
ACCT = "111122223333"
DEV = f"arn:aws:iam::{ACCT}:role/Developer"
RO = f"arn:aws:iam::{ACCT}:role/ReadOnly"




@pytest.fixture
def cenv(tmp_path: Path) -> ClientEnv:
    return ClientEnv(tmp_path)


def _line(stream: object, pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern}")


def _sign_in(browser: Browser, url: str, user: str, *, device: bool = False) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(url)
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#sign-in")
    if device:
        page.wait_for_selector("#continue")
        page.click("#continue")
        page.wait_for_selector("#approve")
        page.click("#approve")
        page.wait_for_selector("#device-done")
    else:
        page.wait_for_selector("#allow")
        page.click("#allow")
        page.wait_for_url("http://127.0.0.1:*/callback**", timeout=10000)
        assert "return to the terminal" in page.content()
    ctx.close()


def browser_login(cenv: ClientEnv, idp: LiveIdp, chromium: Browser, user: str, *extra: str
                  ) -> str:
    proc = cenv.popen("login", "--issuer", idp.url, "--client-id", "demo-cli", "--no-browser",
                      *extra)
    url = _line(proc.stderr, r"Sign in at: (\S+)").group(1)
    assert "code_challenge_method=S256" in url and "redirect_uri=http%3A%2F%2F127.0.0.1%3A" \
        in url
    _sign_in(chromium, url, user)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""
    return err


def test_browser_login_pkce_loopback_keeps_refresh_token_private_and_never_printed(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> None:
    err = browser_login(cenv, demo_idp, chromium, "bob", "--role", "Developer")
    assert f"uses {DEV}" in err and "assumed-role/Developer/bob" in err
    tokens = list((cenv.root / "idp" / "tokens").iterdir())
    assert len(tokens) == 1
    assert stat.S_IMODE(tokens[0].stat().st_mode) == 0o600
    refresh = json.loads(tokens[0].read_text())["refresh_token"]
    assert refresh not in err
    for cached in (cenv.root / "idp" / "cache").iterdir():
        assert stat.S_IMODE(cached.stat().st_mode) == 0o600


def test_device_code_login_approved_through_the_device_page(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> None:
    proc = cenv.popen("login", "--issuer", demo_idp.url, "--client-id", "demo-cli",
                      "--device-code", "--role", RO)
    m = _line(proc.stderr, r"open (\S+) and check that it shows the code (\S+)")
    assert m.group(2) in m.group(1) or "user_code=" in m.group(1)
    _sign_in(chromium, m.group(1), "carol", device=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "" and "assumed-role/ReadOnly/carol" in err


def test_two_roles_from_one_login_and_the_cache_reused(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> None:
    browser_login(cenv, demo_idp, chromium, "bob", "--role", DEV, "--profile", "dev")
    first = cenv.run("credentials", "--profile", "dev")
    assert first.returncode == 0 and first.stderr == ""
    again = cenv.run("credentials", "--profile", "dev")
    assert json.loads(again.stdout) == json.loads(first.stdout)  # from the cache
    other = cenv.run("credentials", "--profile", "dev", "--role", RO)  # no new login
    assert other.returncode == 0, other.stderr
    ro, dev = json.loads(other.stdout), json.loads(first.stdout)
    assert ro["AccessKeyId"] != dev["AccessKeyId"]
    sts = boto3.client("sts", endpoint_url=demo_idp.url + "/sts", region_name="us-east-1",
                       aws_access_key_id=ro["AccessKeyId"],
                       aws_secret_access_key=ro["SecretAccessKey"],
                       aws_session_token=ro["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/bob"


def test_near_expiry_credentials_renewed_with_the_refresh_token_clock_shifted(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    browser_login(cenv, demo_idp, chromium, "bob", "--role", DEV)
    for k, v in cenv.env.items():
        monkeypatch.setenv(k, v)
    token_file = next((cenv.root / "idp" / "tokens").iterdir())
    rt_before = json.loads(token_file.read_text())["refresh_token"]
    assert client_cli.main(["credentials"]) == 0
    cached = json.loads(capsys.readouterr().out)
    assert client_cli.main(["credentials"], clock=lambda: time.time() + 600) == 0
    assert json.loads(capsys.readouterr().out) == cached  # 1 h credentials: 50 min left
    # 50 minutes later: 10 minutes left, inside botocore's refresh window: renewed silently
    assert client_cli.main(["credentials"], clock=lambda: time.time() + 3000) == 0
    out, err = capsys.readouterr()
    renewed = json.loads(out)
    assert renewed["AccessKeyId"] != cached["AccessKeyId"] and err == ""
    assert json.loads(token_file.read_text())["refresh_token"] != rt_before  # rotated


def test_no_login_and_no_terminal_exits_at_once_with_nothing_on_stdout(
        demo_idp: LiveIdp, cenv: ClientEnv) -> None:
    assert cenv.run("configure", "--profile", "p", "--issuer", demo_idp.url, "--client-id",
                    "demo-cli", "--role", DEV).returncode == 0
    started = time.monotonic()
    r = cenv.run("credentials", "--profile", "p", timeout=20)
    assert time.monotonic() - started < 10
    assert r.returncode == 3 and r.stdout == ""
    assert "run `idp login --profile p`" in r.stderr


def test_revoked_refresh_token_without_terminal_fails_fast(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> None:
    browser_login(cenv, demo_idp, chromium, "bob", "--role", DEV)
    token_file = next((cenv.root / "idp" / "tokens").iterdir())
    token_file.write_text(json.dumps({"refresh_token": "x.not-a-token"}))
    for cached in (cenv.root / "idp" / "cache").iterdir():
        cached.unlink()
    r = cenv.run("credentials", timeout=20)
    assert r.returncode == 3 and r.stdout == "" and "idp login" in r.stderr
    assert not token_file.exists()  # a refused refresh token is forgotten


def test_duration_above_the_role_maximum_is_clamped_with_a_notice(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> None:
    browser_login(cenv, demo_idp, chromium, "alice", "--role", "Admin")  # max 3600
    r = cenv.run("credentials", "--duration", "43200")
    assert r.returncode == 0, r.stderr
    assert "above the role's MaxSessionDuration: credentials are for 3600 seconds" in r.stderr
    exp = json.loads(r.stdout)["Expiration"]
    left = time.mktime(time.strptime(exp, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    assert 3500 < left <= 3600


def test_concurrent_renewals_share_one_refresh_and_keep_the_sign_in(
        demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> None:
    """SDKs start several credential_process at once: without the login's lock each would
    redeem the same refresh token, a reuse that revokes the whole sign-in."""
    browser_login(cenv, demo_idp, chromium, "bob", "--role", DEV)
    for cached in (cenv.root / "idp" / "cache").iterdir():
        cached.unlink()
    procs = [cenv.popen("credentials", *(["--role", RO] if i % 2 else [])) for i in range(6)]
    results = [(p.wait(60), p.stdout.read() if p.stdout else "", p.stderr.read()
                if p.stderr else "") for p in procs]
    assert [r[0] for r in results] == [0] * 6, [r[2] for r in results]
    assert len({json.loads(r[1])["AccessKeyId"] for r in results}) == 2  # one per role
    for cached in (cenv.root / "idp" / "cache").iterdir():
        cached.unlink()
    assert cenv.run("credentials").returncode == 0  # the sign-in still lives
