"""Where the refresh token lives: the OS keyring when ``keyring`` has a real backend, else a
0600 file; never a plaintext or failing keyring backend."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from idp.client.store import KEYRING_SERVICE, TokenStore, login_lock


class MemoryKeyring(KeyringBackend):
    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IDP_HOME", str(tmp_path))
    monkeypatch.delenv("IDP_KEYRING", raising=False)
    previous = keyring.get_keyring()
    yield tmp_path
    keyring.set_keyring(previous)


def test_refresh_token_goes_to_the_os_keyring_and_no_file(home: Path) -> None:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    store = TokenStore()
    assert store.where == "the OS keyring"
    store.put("https://idp|cli", "rt-secret")
    assert backend.items == {(KEYRING_SERVICE, "https://idp|cli"): "rt-secret"}
    assert store.get("https://idp|cli") == "rt-secret"
    assert not (home / "tokens").exists()
    store.delete("https://idp|cli")
    assert store.get("https://idp|cli") is None


@pytest.mark.parametrize("backend", [fail.Keyring()], ids=["no-keyring-backend"])
def test_without_a_usable_keyring_a_0600_file(home: Path, backend: KeyringBackend) -> None:
    keyring.set_keyring(backend)
    store = TokenStore()
    assert store.where == "a 0600 file"
    store.put("https://idp|cli", "rt-secret")
    (f,) = (home / "tokens").iterdir()
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
    assert store.get("https://idp|cli") == "rt-secret"


def test_idp_keyring_off_forces_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.setenv("IDP_KEYRING", "off")
    assert TokenStore().where == "a 0600 file"


def test_login_lock_is_per_login_and_its_file_is_0600(home: Path) -> None:
    with login_lock("a"):
        with login_lock("b"):  # other logins are not blocked
            pass
    assert stat.S_IMODE(next((home / "locks").iterdir()).stat().st_mode) == 0o600
