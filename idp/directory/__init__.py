"""The user directory: who a person is, their groups, and whether their password is right.

A :class:`Directory` is a small protocol (Dex's ``connector.PasswordConnector``):
``authenticate(username, password) -> Identity`` and ``lookup(username)``.  Backends:
``ldap.py`` (OpenLDAP, Active Directory through ldap3) and ``file.py`` (YAML, argon2id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from idp.config import DirectoryConfig

MAX_USERNAME = 256
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class AccountStatus:
    """What the directory says about the account beyond who it is (after a right password).

    ``must_change``: the password must be changed before anything else (file
    ``must_change``, ppolicy ``pwdReset``, AD ``pwdLastSet=0``); ``expires_in``: seconds until
    the password expires, when the directory says (ppolicy's expiry warning);
    ``grace_logins``: sign-ins left after expiry (ppolicy grace logins); ``changed_at``: when
    the password was last set (POSIX seconds; the file's ``password_changed_at``), which the
    login service holds against ``passwords.max_age_days``."""

    must_change: bool = False
    expires_in: int | None = None
    grace_logins: int | None = None
    changed_at: float | None = None


@dataclass(frozen=True)
class Identity:
    """A person as the directory knows them.

    ``username`` is the canonical login name; ``subject`` a stable unique ID (LDAP
    ``entryUUID``/``objectGUID`` or the file backend's ``id``); ``groups`` the short group
    names (``cn``); ``attributes`` the mapped attributes (``email``, ``name``…).
    """

    username: str
    subject: str
    groups: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    dn: str | None = None
    status: AccountStatus = field(default=AccountStatus(), compare=False)

    @property
    def email(self) -> str | None:
        return self.attributes.get("email")

    @property
    def display_name(self) -> str:
        return self.attributes.get("name") or self.username


@runtime_checkable
class Directory(Protocol):
    """What the IdP needs from a directory."""

    def authenticate(self, username: str, password: str) -> Identity:
        """The identity when the password is right.

        Raises :class:`idp.errors.AuthenticationFailed` for an unknown user or a wrong
        password alike (one answer, similar timing), :class:`idp.errors.DirectoryUnavailable`
        when the directory cannot be reached.
        """
        ...

    def lookup(self, username: str) -> Identity | None:
        """The identity of a user without a password check, ``None`` when unknown."""
        ...

    def ping(self) -> None:
        """Raise :class:`idp.errors.DirectoryUnavailable` unless the directory answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def valid_username(username: str) -> bool:
    """A username worth asking the directory about: non-empty, bounded, no control chars."""
    return (
        0 < len(username) <= MAX_USERNAME
        and username == username.strip()
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in username)
    )


def open_directory(config: DirectoryConfig) -> Directory:
    """Open the backend the config names."""
    if config.type == "ldap":
        from idp.directory.ldap import LdapDirectory

        assert config.ldap is not None
        return LdapDirectory(config.ldap)
    from idp.directory.file import FileDirectory

    assert config.file is not None
    return FileDirectory.from_config(config.file)
