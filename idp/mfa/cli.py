"""``idp users mfa``: list, reset and re-seal people's second factors (audited).

They read the enrolments folder of the config (``mfa.enrolments_dir``), which the running
IdP shares, so they work while it runs.  ``reset`` also clears the person's wrong-code
counters when the store is Redis (the ``memory://`` store lives inside the IdP process: there
the counters end with their window).
"""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click

from idp.audit import Auditor, RequestInfo, open_sink
from idp.config import Config, load_config
from idp.errors import ConfigError, IdpError
from idp.mfa.service import MfaService, open_service
from idp.store import Store, open_store
from idp.store.memory import MemoryStore

_config = click.option("--config", "config_path", envvar="IDP_CONFIG", required=True,
                       type=click.Path(dir_okay=False, path_type=Path))
CLI = RequestInfo(user_agent="idp-cli")


def _open(config_path: Path) -> tuple[Config, MfaService, Store, Auditor]:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: {exc.description}") from exc
    memory = config.store.url.lower().startswith("memory://")
    store: Store = MemoryStore() if memory else open_store(
        config.store.url, socket_timeout=config.store.socket_timeout,
        wait_replicas=config.store.wait_replicas, wait_timeout_ms=config.store.wait_timeout_ms)
    auditor = Auditor(open_sink(config.audit.sink, config.audit.path))
    return config, open_service(config, store, auditor), store, auditor


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else "never"


@click.group("mfa")
def mfa() -> None:
    """Second factors of people: list, reset, re-seal after a key rotation."""


@mfa.command("list")
@_config
@click.argument("username", required=False)
def list_command(config_path: Path, username: str | None) -> None:
    """The factors of USERNAME (or of everyone who has one): never their secrets."""
    _, svc, store, auditor = _open(config_path)
    try:
        people = [svc.enrolment(username)] if username else list(svc.enrolments.all())
        for e in people:
            click.echo(f"{e.username}: {len(e.factors)} factor(s), "
                       f"{len(e.recovery)} recovery code(s) left")
            for f in e.factors:
                click.echo(f"  {f.id}  {f.kind:8}  {f.name!r}  added {_when(f.created)}  "
                           f"last used {_when(svc.last_used(e.username, f))}")
        auditor.emit("MfaList", CLI, user=username, identity_type="Admin", read_only=True,
                     additional={"admin": getpass.getuser(), "people": len(people)})
    finally:
        store.close()
        auditor.close()


@mfa.command("reset")
@_config
@click.argument("username")
def reset_command(config_path: Path, username: str) -> None:
    """Remove every factor and recovery code of USERNAME (they enrol again)."""
    _, svc, store, auditor = _open(config_path)
    try:
        removed = svc.reset(username, CLI, actor=getpass.getuser())
    except IdpError as exc:
        raise click.ClickException(exc.description) from exc
    finally:
        store.close()
        auditor.close()
    click.echo(f"{username}: {removed} factor(s) and the recovery codes removed")


@mfa.command("rekey")
@_config
def rekey_command(config_path: Path) -> None:
    """Seal every factor secret under the first of ``mfa.encryption_keys`` (after putting a
    new key first); older keys can then be removed from the config."""
    _, svc, store, auditor = _open(config_path)
    try:
        count = svc.rekey()
        auditor.emit("MfaRekey", CLI, identity_type="Admin",
                     additional={"admin": getpass.getuser(), "resealed": count})
    except IdpError as exc:
        raise click.ClickException(exc.description) from exc
    finally:
        store.close()
        auditor.close()
    click.echo(f"{count} secret(s) resealed under key {svc.box.current_kid}")
