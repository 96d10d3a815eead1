"""Password rules (NIST SP 800-63B §5.1.1.2), one named case per rule, and the places a
password is set (`idp users add|passwd`) applying them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from idp.config import PasswordPolicyConfig
from idp.directory.cli import users as users_cli
from idp.directory.file import FileDirectory, add_user, list_users, set_password, write_users
from idp.directory.policy import PasswordPolicy, context_words
from idp.errors import ConfigError

GOOD = "amber-lantern-orbit"


def _rules(password: str, context: tuple[str, ...] = (), **options: object) -> list[str]:
    policy = PasswordPolicy(PasswordPolicyConfig.model_validate(options),
                            issuer="https://login.example.org")
    return [u.rule for u in policy.check(password, context)]


@pytest.mark.parametrize(("password", "context", "options", "rules"), [
    pytest.param(GOOD, (), {}, [], id="a long unusual passphrase passes"),
    pytest.param("k7#Qm2z", (), {}, ["min_length"], id="min length 8 by default"),
    pytest.param("unusual-orbit-9", (), {"min_length": 16}, ["min_length"],
                 id="min length configurable (15+ for password-only)"),
    pytest.param("lantern orbit " * 5, (), {}, [], id="64 characters and spaces allowed"),
    pytest.param("lantern-orbit-" * 5, (), {"max_length": 64}, ["max_length"],
                 id="max length configurable, never under 64"),
    pytest.param("Grüße-aus-Köln-🌍", (), {}, [], id="any unicode allowed"),
    pytest.param("Zu\u0308ri\u0301q7", (), {}, ["min_length"],
                 id="length counted after opaque-string preparation"),
    pytest.param("password1", (), {}, ["blocklist"], id="blocklist common password"),
    pytest.param("PaSsWoRd1", (), {}, ["blocklist"], id="blocklist case-insensitive"),
    pytest.param("iloveyou2", (), {}, ["blocklist"], id="blocklist breached password"),
    pytest.param("p4ssw0rd", (), {}, ["blocklist"], id="blocklist l33t variant"),
    pytest.param("qwertyuiop", (), {}, ["blocklist"], id="keyboard walk refused"),
    pytest.param("zzzzzzzzzzzz", (), {}, ["guessable"], id="repeated characters refused"),
    pytest.param("abcdefghijkl", (), {}, ["guessable"], id="sequence refused"),
    pytest.param("zora-lantern-9", ("zora",), {}, ["context"], id="context username"),
    pytest.param("lantern-zfoster-9", tuple(context_words(email="zfoster@mail.example")), {},
                 ["context"], id="context email local part"),
    pytest.param("Lantern-Foster-19", tuple(context_words(name="Zora Foster")), {},
                 ["context"], id="context name word"),
    pytest.param("my-login-lantern", (), {}, ["context"], id="context issuer host name"),
    pytest.param("acme-lantern-orbit", (), {"context_words": ["acme"]}, ["context"],
                 id="context configured word"),
    pytest.param(GOOD, (), {"require_upper": True, "require_digit": True,
                            "require_symbol": True}, ["upper", "digit"],
                 id="composition rules when enabled"),
    pytest.param("Amber-lantern-orbit7", (), {"require_upper": True, "require_lower": True,
                                              "require_digit": True, "require_symbol": True},
                 [], id="composition met"),
    pytest.param("ab", ("ab",), {"require_digit": True}, ["min_length", "guessable", "digit"],
                 id="every unmet rule at once"),
])
def test_password_rule(password: str, context: tuple[str, ...], options: dict[str, object],
                       rules: list[str]) -> None:
    assert _rules(password, context, **options) == rules


def test_composition_and_max_age_are_off_by_default() -> None:
    """NIST SP 800-63B §5.1.1.2: no composition rules, no periodic change by default."""
    c = PasswordPolicyConfig()
    assert not (c.require_upper or c.require_lower or c.require_digit or c.require_symbol)
    assert c.max_age_days is None and c.min_length == 8 and c.max_length >= 64


@pytest.mark.parametrize("value", [
    pytest.param({"min_length": 6}, id="min length under 8 refused"),
    pytest.param({"max_length": 32}, id="max length under 64 refused"),
])
def test_policy_config_keeps_the_nist_floor(value: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        PasswordPolicyConfig.model_validate(value)


def test_blocklist_files_extend_the_shipped_list(tmp_path: Path) -> None:
    extra = tmp_path / "ours.txt"
    extra.write_text("Amber-Lantern-Orbit\n\n")
    policy = PasswordPolicy(PasswordPolicyConfig(blocklist_files=[extra]))
    assert [u.rule for u in policy.check(GOOD)] == ["blocklist"]


def test_strength_meter_scores() -> None:
    policy = PasswordPolicy()
    assert policy.strength("password") == 0
    assert policy.strength(GOOD) >= 3
    assert policy.strength("x" * 500) == 0, "long input is cut before zxcvbn"


def test_add_user_refuses_a_blocklisted_password(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    with pytest.raises(ConfigError, match="common or breached"):
        add_user(path, "zora", "password1")
    assert not path.exists()


def test_set_password_refuses_the_username_and_clears_must_change(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    write_users(path, [])
    add_user(path, "zora", GOOD, must_change=True)
    with pytest.raises(ConfigError, match="your name, username"):
        set_password(path, "zora", "zora-lantern-9")
    user = set_password(path, "zora", "second-amber-lantern")
    assert not user.must_change and user.password_changed_at is not None


def test_cli_add_refuses_a_short_password_with_every_rule(tmp_path: Path) -> None:
    result = CliRunner().invoke(users_cli, ["add", "zora", "--password-stdin", "--file",
                                            str(tmp_path / "u.yaml")], input="zora1\n")
    assert result.exit_code == 1
    assert "at least 8 characters" in result.output and "your name" in result.output


def test_cli_passwd_applies_the_configured_policy(tmp_path: Path) -> None:
    config = tmp_path / "idp.yaml"
    config.write_text(yaml.safe_dump({
        "issuer": "https://idp.example.org", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": "people.yaml"}},
        "passwords": {"min_length": 20}}))
    runner = CliRunner()
    added = runner.invoke(users_cli, ["add", "zora", "--password-stdin", "--config",
                                      str(config)], input="amber-lantern-orbit-twenty\n")
    assert added.exit_code == 0, added.output
    short = runner.invoke(users_cli, ["passwd", "zora", "--password-stdin", "--config",
                                      str(config)], input=GOOD + "\n")
    assert short.exit_code == 1 and "at least 20 characters" in short.output


def test_cli_disable_enable_remove(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "zora", GOOD)
    runner = CliRunner()
    assert runner.invoke(users_cli, ["disable", "zora", "--file", str(path)]).exit_code == 0
    assert list_users(path)[0].disabled
    assert FileDirectory(path).lookup("zora") is None
    assert runner.invoke(users_cli, ["enable", "zora", "--file", str(path)]).exit_code == 0
    assert FileDirectory(path).lookup("zora") is not None
    assert runner.invoke(users_cli, ["remove", "zora", "--file", str(path)]).exit_code == 0
    assert list_users(path) == []
    gone = runner.invoke(users_cli, ["remove", "zora", "--file", str(path)])
    assert gone.exit_code == 1 and "no user `zora`" in gone.output
