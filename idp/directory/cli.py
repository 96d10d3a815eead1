"""``idp users``: manage the file directory's users (add, change a password, list, disable,
enable, remove); every password set here meets the config's password policy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from idp.config import load_config
from idp.directory.file import (
    FileUser,
    add_user,
    list_users,
    remove_user,
    set_disabled,
    set_password,
)
from idp.directory.policy import PasswordPolicy
from idp.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def _file_options(func: F) -> F:
    func = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="config file whose directory.file.path names the users file")(func)
    return click.option("--file", "file_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="the users file (YAML)")(func)


def _users_file(file_path: Path | None, config_path: Path | None) -> Path:
    return _open(file_path, config_path)[0]


def _open(file_path: Path | None, config_path: Path | None) -> tuple[Path, PasswordPolicy]:
    """The users file and the password policy: the config's, or the default one."""
    if config_path is None:
        if file_path is None:
            raise click.UsageError("give the users file with --file PATH or --config FILE")
        return file_path, PasswordPolicy()
    try:
        config = load_config(config_path)
        policy = PasswordPolicy(config.passwords, config.issuer)
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc.description}") from exc
    if file_path is not None:
        return file_path, policy
    if config.directory.file is None:
        raise click.ClickException(f"{config_path}: the directory has no `file` section")
    return config.directory.file.path, policy


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _admin_event(config_path: Path | None, event: str, username: str, **extra: Any) -> None:
    """Audit the change when a config names the audit sink (``--file`` alone has none)."""
    if config_path is None:
        return
    from idp.audit.events import admin_event

    admin_event(load_config(config_path), event, resources=[
        {"ARN": f"user/{username}", "type": "IdpUser"}],
        additional={"targetUser": username, "config": str(config_path), **extra})


@click.group("users")
def users() -> None:
    """Manage the users of the file directory."""


@users.command("add")
@click.argument("username")
@click.option("--group", "groups", multiple=True, help="a group of the user (repeatable)")
@click.option("--email", default=None, help="e-mail address")
@click.option("--name", default=None, help="display name")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin's first line")
@click.option("--must-change", is_flag=True, help="the password must be changed at sign-in")
@_file_options
def add_command(username: str, groups: tuple[str, ...], email: str | None, name: str | None,
                password_stdin: bool, must_change: bool, file_path: Path | None,
                config_path: Path | None) -> None:
    """Add USERNAME with a new argon2id password hash and a random subject ID."""
    path, policy = _open(file_path, config_path)
    password = _read_password(password_stdin)
    try:
        user = add_user(path, username, password, groups, email, name, policy=policy,
                        must_change=must_change)
    except ConfigError as exc:
        raise click.ClickException(exc.description) from exc
    _admin_event(config_path, "CreateUser", user.username, groups=list(groups))
    click.echo(f"added `{user.username}` (id {user.id}) to {path}")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin's first line")
@click.option("--must-change", is_flag=True, help="the password must be changed at sign-in")
@_file_options
def passwd_command(username: str, password_stdin: bool, must_change: bool,
                   file_path: Path | None, config_path: Path | None) -> None:
    """Set a new password for USERNAME."""
    path, policy = _open(file_path, config_path)
    password = _read_password(password_stdin)
    try:
        set_password(path, username, password, policy=policy, must_change=must_change)
    except ConfigError as exc:
        raise click.ClickException(exc.description) from exc
    _admin_event(config_path, "ChangeUserPassword", username)
    click.echo(f"changed the password of `{username}` in {path}")


@users.command("list")
@_file_options
def list_command(file_path: Path | None, config_path: Path | None) -> None:
    """List the users: username, id, groups, e-mail, and whether they are disabled."""
    path = _users_file(file_path, config_path)
    try:
        found = list_users(path)
    except ConfigError as exc:
        raise click.ClickException(exc.description) from exc
    for u in found:
        flags = "  (disabled)" if u.disabled else ""
        flags += "  (must change password)" if u.must_change else ""
        click.echo(f"{u.username}\t{u.id}\t{','.join(u.groups) or '-'}\t{u.email or '-'}{flags}")


def _state_command(name: str, doc: str, apply: Callable[[Path, str], FileUser], done: str) -> None:
    @users.command(name, help=doc)
    @click.argument("username")
    @_file_options
    def command(username: str, file_path: Path | None, config_path: Path | None) -> None:
        path = _users_file(file_path, config_path)
        try:
            user = apply(path, username)
        except ConfigError as exc:
            raise click.ClickException(exc.description) from exc
        click.echo(f"{done} `{user.username}` in {path}")


_state_command("disable", "Disable USERNAME: no sign-in, no refresh; open sessions end at the "
               "next directory re-check.", lambda p, u: set_disabled(p, u, True), "disabled")
_state_command("enable", "Enable USERNAME again.", lambda p, u: set_disabled(p, u, False),
               "enabled")
_state_command("remove", "Remove USERNAME from the users file.", remove_user, "removed")


@users.command("revoke")
@click.argument("username")
@click.option("--reason", default="", help="why, for the audit trail")
@click.option("--config", "config_path", envvar="IDP_CONFIG", required=True,
              type=click.Path(dir_okay=False, path_type=Path))
def revoke_command(username: str, reason: str, config_path: Path) -> None:
    """End every IdP session, refresh-token family, consent and temporary credential of
    USERNAME in every process on the config's (shared) store, within a request."""
    import time

    from idp.audit import Auditor, RequestInfo, open_sink
    from idp.revocation import revoke_everywhere
    from idp.store import open_store

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc.description}") from exc
    if config.store.url.lower().startswith("memory://"):
        raise click.ClickException("the memory:// store lives inside the running idp process: "
                                   "this command cannot reach it (use a shared Redis store)")
    subject = _subject_of(config, username)
    if subject is None:
        raise click.ClickException(f"no user `{username}` in the directory")
    store = open_store(
        config.store.url, socket_timeout=config.store.socket_timeout,
        wait_replicas=config.store.wait_replicas, wait_timeout_ms=config.store.wait_timeout_ms)
    try:
        now = int(time.time())
        consents = revoke_everywhere(store, username, subject,
                                     [c.client_id for c in config.oidc.clients], now)
    finally:
        store.close()
    auditor = Auditor(open_sink(config.audit.sink, config.audit.path))
    auditor.emit("RevokeUser", RequestInfo(user_agent="idp-cli"), identity_type="Admin",
                 resources=[{"ARN": subject, "type": "IdP::User"}],
                 additional={"user": username, "reason": reason, "revokedAt": now,
                             "consentsDeleted": consents})
    auditor.close()
    click.echo(f"revoked `{username}`: sessions, refresh tokens and credentials issued before "
               f"now are refused; {consents} consent(s) deleted")


def _subject_of(config: Any, username: str) -> str | None:
    """The person's subject, from the users file even when disabled, else the directory."""
    from idp.directory import open_directory

    if config.directory.file is not None:
        for user in list_users(config.directory.file.path):
            if user.username.casefold() == username.casefold():
                return user.id
        return None
    directory = open_directory(config.directory)
    try:
        person = directory.lookup(username)
    finally:
        directory.close()
    return person.subject if person else None
