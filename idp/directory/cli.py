"""``idp users``: manage the file directory's users (add, change a password, list)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from idp.config import load_config
from idp.directory.file import add_user, list_users, set_password
from idp.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def _file_options(func: F) -> F:
    func = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="config file whose directory.file.path names the users file")(func)
    return click.option("--file", "file_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="the users file (YAML)")(func)


def _users_file(file_path: Path | None, config_path: Path | None) -> Path:
    if file_path is not None:
        return file_path
    if config_path is None:
        raise click.UsageError("give the users file with --file PATH or --config FILE")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc.description}") from exc
    if config.directory.file is None:
        raise click.ClickException(f"{config_path}: the directory has no `file` section")
    return config.directory.file.path


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
@_file_options
def add_command(username: str, groups: tuple[str, ...], email: str | None, name: str | None,
                password_stdin: bool, file_path: Path | None, config_path: Path | None) -> None:
    """Add USERNAME with a new argon2id password hash and a random subject ID."""
    path = _users_file(file_path, config_path)
    password = _read_password(password_stdin)
    try:
        user = add_user(path, username, password, groups, email, name)
    except ConfigError as exc:
        raise click.ClickException(exc.description) from exc
    _admin_event(config_path, "CreateUser", user.username, groups=list(groups))
    click.echo(f"added `{user.username}` (id {user.id}) to {path}")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin's first line")
@_file_options
def passwd_command(username: str, password_stdin: bool, file_path: Path | None,
                   config_path: Path | None) -> None:
    """Set a new password for USERNAME."""
    path = _users_file(file_path, config_path)
    password = _read_password(password_stdin)
    try:
        set_password(path, username, password)
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
        click.echo(f"{u.username}\t{u.id}\t{','.join(u.groups) or '-'}\t{u.email or '-'}{flags}")
