"""The person at a terminal: ``idp login`` talks on ``/dev/tty`` (a real pseudo-terminal made
the process's controlling terminal), never on stdout; the role picker reads the answer there;
and the step-up hook signs in again with ``acr_values`` when a refusal asks for it."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials as BotoCredentials
from playwright.sync_api import Browser

from idp.client.errors import ClientError
from idp.client.session import STEP_UP_ACR, Session
from idp.client.store import Profile, TokenStore
from idp.client.sts import Credentials
from idp.demo import DEMO_TOTP_SECRET, demo_config
from idp.mfa import totp
from tests.client.kit import IDP, ClientEnv
from tests.client.test_login_live import ACCT, _sign_in
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.mfa.test_browser import decide

OPERATOR_DEMO = f"arn:aws:iam::{ACCT}:role/Operator"


class Pty:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.seen = ""

    def preexec(self) -> None:
        os.setsid()
        fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.seen)
            if m:
                return m
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                self.seen += os.read(self.master, 4096).decode(errors="replace")
        raise AssertionError(f"no {pattern!r} on the terminal: {self.seen!r}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())


@pytest.mark.browser
def test_role_picker_on_the_terminal_and_nothing_on_stdout(
        demo_idp: LiveIdp, chromium: Browser, tmp_path: Path) -> None:
    cenv = ClientEnv(tmp_path)
    pty = Pty()
    proc = subprocess.Popen([IDP, "login", "--issuer", demo_idp.url, "--client-id", "demo-cli",
                             "--no-browser"], env=cenv.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=pty.preexec, pass_fds=(pty.slave,))
    try:
        url = pty.expect(r"Sign in at: (\S+)").group(1)
        _sign_in(chromium, url, "alice")  # admins + engineering: Admin, Developer, ReadOnly
        pty.expect(r"choose 1-3: ")
        menu = pty.seen
        assert f"arn:aws:iam::{ACCT}:role/Admin" in menu and "ReadOnly" in menu
        pty.send("9\n")  # out of range: asked again
        pty.expect(r"9\r?\nchoose 1-3: ")
        pty.send("2\n")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        os.close(pty.master)
        os.close(pty.slave)
    assert proc.returncode == 0, err
    assert out == ""
    picked = re.findall(r"\d\) (\S+)", menu)[1]
    assert f"uses {picked}" in err


class _Steps(Session):
    """A session whose sign-in and STS are recorded: the STS refuses until a stronger
    sign-in happened."""

    def __init__(self, tmp: Path, refusal: ClientError, plain: str = "plain") -> None:
        super().__init__(Profile("p", "https://idp.example.org", "c"), TokenStore(),
                         notice=lambda _: None)
        self.refusal = refusal
        self.plain = plain
        self.logins: list[str | None] = []

    def terminal(self) -> Any:
        return object()

    def fresh_tokens(self, *, interactive: bool) -> dict[str, Any]:
        return {"id_token": self.plain}

    def login(self, acr_values: str | None = None) -> dict[str, Any]:
        self.logins.append(acr_values)
        return {"id_token": "strong"}

    def _assume(self, role_arn: str, tokens: dict[str, Any], duration: int | None,
                known: int | None) -> tuple[Credentials, int | None]:
        if tokens["id_token"] == self.plain:
            raise self.refusal
        return Credentials("ASIA", "s", "t", "2030-01-01T00:00:00Z"), duration


@pytest.mark.parametrize("refusal", [
    ClientError("insufficient_user_authentication: mfa required",
                "insufficient_user_authentication"),
    ClientError("AccessDenied: requires aws:MultiFactorAuthPresent", "AccessDenied"),
], ids=["rfc9470-error", "sts-mfa-condition"])
def test_step_up_hook_signs_in_again_with_acr_values(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     refusal: ClientError) -> None:
    monkeypatch.setenv("IDP_HOME", str(tmp_path))
    monkeypatch.setenv("IDP_KEYRING", "off")
    s = _Steps(tmp_path, refusal)
    assert s.credentials("arn:aws:iam::1:role/Operator").access_key_id == "ASIA"
    assert s.logins == [STEP_UP_ACR]


def _jwt(claims: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.sig"


OPERATOR = "arn:aws:iam::1:role/Operator"


def test_access_denied_for_a_mapped_role_after_a_password_only_sign_in_steps_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trust policy's refusal names no condition (AWS's own words): a role the mapping gives
    refused to a token whose amr says no second factor is the MFA-requiring role."""
    monkeypatch.setenv("IDP_HOME", str(tmp_path))
    s = _Steps(tmp_path, ClientError("AccessDenied: Not authorized to perform "
                                     "sts:AssumeRoleWithWebIdentity", "AccessDenied"),
               plain=_jwt({"roles": [OPERATOR], "amr": ["pwd"]}))
    assert s.credentials(OPERATOR).access_key_id == "ASIA"
    assert s.logins == [STEP_UP_ACR] == ["https://refeds.org/profile/mfa"]


@pytest.mark.parametrize("claims", [
    {"roles": [OPERATOR], "amr": ["pwd", "otp", "mfa"]},
    {"roles": ["arn:aws:iam::1:role/Other"], "amr": ["pwd"]},
], ids=["token-already-says-mfa", "role-not-mapped"])
def test_access_denied_does_not_step_up_when_mfa_cannot_be_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claims: dict[str, Any]) -> None:
    monkeypatch.setenv("IDP_HOME", str(tmp_path))
    s = _Steps(tmp_path, ClientError("AccessDenied: Not authorized to perform "
                                     "sts:AssumeRoleWithWebIdentity", "AccessDenied"),
               plain=_jwt(claims))
    with pytest.raises(ClientError):
        s.credentials(OPERATOR)
    assert s.logins == []


def test_other_refusals_do_not_step_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_HOME", str(tmp_path))
    s = _Steps(tmp_path, ClientError("AccessDenied: not authorized", "AccessDenied"))
    with pytest.raises(ClientError):
        s.credentials("arn:aws:iam::1:role/Operator")
    assert s.logins == []


@pytest.fixture
def step_up_idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """The demo where only groups that require it are asked at sign-in: dave signs in with his
    password alone and steps up when a role asks (``mfa.sign_in: required``)."""
    port = free_port()
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[tmp_path / "md"],
                         audit="none")
    config = config.model_copy(update={"mfa": config.mfa.model_copy(
        update={"sign_in": "required"})})
    with live_idp(config, demo=True, port=port) as idp:
        yield idp


def _browser_step(browser: Browser, url: str, user: str, *, code: str | None) -> None:
    """The browser side of a loopback sign-in: the password, the authenticator code when the
    IdP asks for one, consent when asked, then the client's callback."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(url)
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#sign-in")
    if code is not None:
        page.wait_for_url(re.compile(r".*/login/mfa\?next=.*"))
        page.fill("#code", code)
        page.click("#verify")
    deadline = time.monotonic() + 20  # consent once per client: asked the first time only
    while "/callback" not in page.url and time.monotonic() < deadline:
        if page.locator("#allow").count():
            page.click("#allow")
            break
        page.wait_for_timeout(100)
    page.wait_for_url("http://127.0.0.1:*/callback**", timeout=10000)
    assert "return to the terminal" in page.content()
    ctx.close()


@pytest.mark.browser
def test_role_requiring_mfa_refused_then_the_client_steps_up_through_the_browser(
        step_up_idp: LiveIdp, chromium: Browser, tmp_path: Path) -> None:
    """dave signs in with his password; Operator's trust policy requires
    aws:MultiFactorAuthPresent, so the STS refuses, and ``idp login`` signs in again with
    ``acr_values`` = REFEDS MFA: the IdP asks for the TOTP code and the new ID token's
    credentials carry the second factor to the decision endpoint."""
    cenv = ClientEnv(tmp_path)
    pty = Pty()
    proc = subprocess.Popen([IDP, "login", "--issuer", step_up_idp.url, "--client-id",
                             "demo-cli", "--no-browser", "--role", OPERATOR_DEMO],
                            env=cenv.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=pty.preexec,
                            pass_fds=(pty.slave,))
    try:
        first = pty.expect(r"Sign in at: (\S+)").group(1)
        assert "acr_values" not in first
        _browser_step(chromium, first, "dave", code=None)  # the password alone
        m = pty.expect(r"Sign in at: \S+[\s\S]*Sign in at: (\S+)")
        second = m.group(1)
        assert "acr_values=https%3A%2F%2Frefeds.org%2Fprofile%2Fmfa" in second
        _browser_step(chromium, second, "dave",
                      code=totp.code_at(DEMO_TOTP_SECRET, time.time() + totp.STEP))
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        os.close(pty.master)
        os.close(pty.slave)
    assert proc.returncode == 0, err + pty.seen
    assert out == "" and f"uses {OPERATOR_DEMO}" in err and "assumed-role/Operator/" in err

    r = cenv.run("credentials")  # from the cache, no terminal needed
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    creds = BotoCredentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert decide(step_up_idp.url, creds, "ec2:TerminateInstances")["decision"] == "Allow"
    for cached in (cenv.root / "idp" / "cache").iterdir():
        cached.unlink()
    renewed = cenv.run("credentials")  # the refresh token's ID token still says MFA
    assert renewed.returncode == 0, renewed.stderr
    assert json.loads(renewed.stdout)["AccessKeyId"] != c["AccessKeyId"]
