"""The person at a terminal: ``idp login`` talks on ``/dev/tty`` (a real pseudo-terminal made
the process's controlling terminal), never on stdout; the role picker reads the answer there;
and the step-up hook signs in again with ``acr_values`` when a refusal asks for it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from idp.client.errors import ClientError
from idp.client.session import STEP_UP_ACR, Session
from idp.client.store import Profile, TokenStore
from idp.client.sts import Credentials
from tests.client.kit import IDP, ClientEnv
from tests.client.test_login_live import ACCT, _sign_in, chromium
from tests.fixtures.live import LiveIdp

__all__ = ["chromium"]


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

    def __init__(self, tmp: Path, refusal: ClientError) -> None:
        super().__init__(Profile("p", "https://idp.example.org", "c"), TokenStore(),
                         notice=lambda _: None)
        self.refusal = refusal
        self.logins: list[str | None] = []

    def terminal(self) -> Any:
        return object()

    def fresh_tokens(self, *, interactive: bool) -> dict[str, Any]:
        return {"id_token": "plain"}

    def login(self, acr_values: str | None = None) -> dict[str, Any]:
        self.logins.append(acr_values)
        return {"id_token": "strong"}

    def _assume(self, role_arn: str, tokens: dict[str, Any], duration: int | None,
                known: int | None) -> tuple[Credentials, int | None]:
        if tokens["id_token"] != "strong":
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


def test_other_refusals_do_not_step_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_HOME", str(tmp_path))
    s = _Steps(tmp_path, ClientError("AccessDenied: not authorized", "AccessDenied"))
    with pytest.raises(ClientError):
        s.credentials("arn:aws:iam::1:role/Operator")
    assert s.logins == []
