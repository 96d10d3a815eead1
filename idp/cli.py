"""The ``idp`` command: ``serve``, ``demo``, ``keys``, ``users``, ``policy``, ``config``."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from idp import logs
from idp.audit.cli import audit
from idp.config import Config, load_config
from idp.directory.cli import users
from idp.errors import ConfigError, IdpError
from idp.iam.cli import policy
from idp.keys import init_keys, list_keys, rotate_keys
from idp.mfa.cli import mfa as mfa_cli
from idp.testing.cli import mock_rp, mock_s3, mock_sp


def _report(path: str, problems: list[str]) -> NoReturn:
    click.echo(f"{path}: {len(problems)} problem(s)", err=True)
    for problem in problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(2)


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        _report(path, exc.problems)


def _checked(path: str) -> Config:
    """Load a config and run every check ``idp serve`` runs (:func:`idp.app.check_config`);
    print every problem at once and exit 2 if there are any."""
    from idp.app import check_config

    config = _load(path)
    report = check_config(config)
    for warning in report.warnings:
        click.echo(f"{path}: warning: {warning}", err=True)
    if report.problems:
        _report(path, report.problems)
    return config


@click.group()
@click.version_option(package_name="idp")
def main() -> None:
    """A federated identity provider: SAML 2.0, OpenID Connect and an AWS-style STS."""


@main.group("config")
def config_group() -> None:
    """Check configuration files."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE as ``idp serve`` does and report every problem at once (exit 2 when
    there are any): the file, keys, store URL, directory, IAM model, metadata, clients."""
    _checked(file)
    click.echo(f"{file}: ok")


@main.command()
@click.option("--config", "config_path", envvar="IDP_CONFIG", required=True,
              type=click.Path(dir_okay=False), help="YAML configuration file")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--server", type=click.Choice(["granian", "gunicorn"]),
              help="granian (a Rust HTTP server, ~2x gunicorn's requests/s per core) or "
              "gunicorn (gthread).  Default: granian, or gunicorn when web.trusted_proxies is "
              "set (granian takes X_Forwarded_For for X-Forwarded-For; gunicorn drops it)")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="request threads per worker")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False))
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False))
def serve(config_path: str, bind: str, workers: int, server: str | None, threads: int,
          certfile: str | None, keyfile: str | None) -> None:
    """Run the IdP under granian (the default) or gunicorn (refuses to start with a config
    that has problems)."""
    from idp.app import create_app

    config = _checked(config_path)
    server = server or default_server(config)
    if bool(certfile) != bool(keyfile):
        raise click.UsageError("--certfile and --keyfile go together")
    if workers > 1 and config.store.url.startswith("memory://"):
        raise click.UsageError("the memory:// store lives in one process: use --workers 1 "
                               "or a Redis store shared by every worker")
    host, sep, port = bind.rpartition(":")
    uds = bind[5:] if bind.startswith("unix:") else None
    if server == "granian" and not uds and (not sep or not port.isdigit()
                                            or not 0 < int(port) < 65536):
        raise click.UsageError("--bind is HOST:PORT or unix:PATH for granian")
    if config.metrics.enabled:
        _metrics_dir()
    try:
        create_app(config).extensions["idp"].close()  # fail fast, in the master, on bad keys
    except IdpError as exc:
        raise click.ClickException(exc.description + (f" ({exc.debug})" if exc.debug else "")
                                   ) from exc
    if server == "granian":
        _run_granian(os.path.abspath(config_path), (host.strip("[]") or "127.0.0.1", int(port))
                     if uds is None else Path(uds), workers, threads, certfile, keyfile)
    else:
        _run_gunicorn(config, bind, workers, threads, certfile, keyfile)


def default_server(config: Config) -> str:
    """granian, unless the client's address comes from a proxy's headers.

    granian folds a header name's ``_`` into ``-`` as it builds the WSGI environ (RFC 3875
    §4.1.18 maps both to one variable) and keeps the last of the two: a client that sends
    ``X_Forwarded_For`` through a proxy that forwards names with underscores (Envoy, HAProxy,
    nginx with ``underscores_in_headers on``, which the SSO portal's header needs) can
    replace the ``X-Forwarded-For`` the proxy wrote, and with it the address that sign-in
    throttling and audit records use.  gunicorn drops such headers; behind a proxy it stays
    the default, and ``--server granian`` is the operator's explicit choice."""
    return "gunicorn" if config.web.trusted_proxies else "granian"


def _metrics_dir() -> None:
    """Every worker writes its metrics to files in one folder of this instance, which
    ``/metrics`` adds up (``prometheus_client`` multiprocess mode); set before any worker
    starts, removed at exit.  A folder the operator names is used as it is."""
    from idp.metrics import MULTIPROC_ENV

    if not os.environ.get(MULTIPROC_ENV):
        folder = tempfile.mkdtemp(prefix="idp-metrics-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[MULTIPROC_ENV] = folder


# seconds a stopping server gives its workers to finish their requests before killing them
# (gunicorn's own default ``graceful_timeout``; granian waits without limit unless told)
GRACEFUL_TIMEOUT = 30


def _run_gunicorn(config: Config, bind: str, workers: int, threads: int,
                  certfile: str | None, keyfile: str | None) -> None:
    from gunicorn.app.base import BaseApplication

    from idp.app import create_app

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # the access log is AccessLog's (below), as under granian: gunicorn's own builds a
            # logging record and a dict of every header per request
            opts: dict[str, Any] = {"bind": bind, "workers": workers,
                                    "worker_class": "idp.gunicorn_worker.DrainingThreadWorker",
                                    "threads": threads,
                                    "certfile": certfile, "keyfile": keyfile,
                                    "graceful_timeout": GRACEFUL_TIMEOUT,
                                    # the SSO portal's header has an underscore, which gunicorn
                                    # drops unless a trusted (loopback) proxy forwards it
                                    "forwarder_headers": "SCRIPT_NAME,PATH_INFO,"
                                                         "X-AMZ-SSO_BEARER_TOKEN"}
            for k, v in opts.items():
                if v is not None:
                    self.cfg.set(k, v)
            # gunicorn >= 24 opens a control socket at one path per user (~/.gunicorn): a
            # second instance on the host would take it over.  Nothing here uses it (signals
            # do: HUP, TERM, TTIN/TTOU).
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return logs.AccessLog(create_app(config))

    _App().run()


def _run_granian(config_path: str, bind: tuple[str, int] | Path, workers: int, threads: int,
                 certfile: str | None, keyfile: str | None) -> None:
    """Each granian worker process imports :func:`granian_app`, which reads the same file.
    ``bind`` is (host, port), or the path of a Unix socket."""
    from granian import Granian
    from granian.constants import Interfaces

    os.environ["IDP_SERVE_CONFIG"] = config_path
    where: dict[str, Any] = ({"uds": bind} if isinstance(bind, Path)
                             else {"address": bind[0], "port": bind[1]})
    Granian("idp.cli:granian_app", **where, interface=Interfaces.WSGI,
            factory=True, workers=workers, blocking_threads=threads,
            log_access=False,  # written by granian_app's AccessLog: one write(2) a line
            workers_kill_timeout=GRACEFUL_TIMEOUT,
            websockets=False, respawn_failed_workers=True,
            ssl_cert=Path(certfile) if certfile else None,
            ssl_key=Path(keyfile) if keyfile else None).serve()


def granian_app() -> Any:
    """The WSGI app of one granian worker (the config was checked by ``idp serve``)."""
    from idp.app import create_app

    # A worker builds the app before granian installs its own signal handlers; until then it
    # holds the handler it inherited from the main process through fork, which swallows a
    # SIGTERM sent in that window, and the worker would then wait for a stop that already
    # came.  A worker that is not serving yet simply ends on SIGTERM/SIGINT.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    app = create_app(load_config(os.environ["IDP_SERVE_CONFIG"]))
    # granian copies os.environ into its base environ after this factory returns: a process
    # variable named like a request key would pass for the request's own
    for name in [n for n in os.environ if _request_key(n)]:
        del os.environ[name]
    return logs.AccessLog(without_process_env(app))


# CGI/1.1 meta-variables (RFC 3875 §4.1), the ones servers add beside them, and PEP 3333's
_CGI_KEYS = frozenset({
    "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "PATH_INFO",
    "PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
    "REMOTE_USER", "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "SERVER_SOFTWARE", "HTTPS", "REMOTE_PORT", "REQUEST_URI", "RAW_URI"})


def _request_key(name: str) -> bool:
    """Whether a WSGI environ key of this name describes the request (RFC 3875 §4.1, PEP
    3333 "environ Variables")."""
    return name in _CGI_KEYS or name.startswith(("HTTP_", "wsgi."))


def without_process_env(app: Any) -> Any:
    """granian starts every WSGI environ from a copy of the process environment (as CGI does):
    take those variables out again, so that secrets in the environment never travel with a
    request.  Names that are request keys are left to the server (it sets them per request);
    :func:`granian_app` removes such names from the worker's environment before granian
    copies it, so none can pass for a header or a CGI variable of the request."""
    inherited = tuple(n for n in os.environ if not _request_key(n))

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        for name in inherited:
            environ.pop(name, None)
        return app(environ, start_response)

    return wsgi


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--keys-dir", default="keys", show_default=True, type=click.Path(file_okay=False))
@click.option("--metadata-dir", "metadata_dirs", multiple=True, envvar="IDP_METADATA_DIR",
              type=click.Path(file_okay=False), help="more SP metadata (repeatable)")
@click.option("--config", "overlay", type=click.Path(dir_okay=False, exists=True),
              help="YAML adding SPs (metadata_dirs), users, OIDC clients, or setting iam, "
              "saml, sts, login, session")
@click.option("--any-user", is_flag=True,
              help="the login form takes any demo username without a password (for CI)")
def demo(host: str, port: int, keys_dir: str, metadata_dirs: tuple[str, ...],
         overlay: str | None, any_user: bool) -> None:
    """Run the embedded demo: no Redis, no LDAP, demo users and clients."""
    from werkzeug.serving import run_simple

    from idp.app import check_config, create_app
    from idp.demo import DEMO_LOGINS, DEMO_TOTP_SECRET, demo_config

    dirs = [Path("metadata"), *(Path(d) for d in metadata_dirs)]
    try:
        config = demo_config(port, host=host, keys_dir=Path(keys_dir), metadata_dirs=dirs,
                             overlay=Path(overlay) if overlay else None)
    except ConfigError as exc:
        _report(overlay or "demo", exc.problems)
    report = check_config(config, demo=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.problems:
        _report(overlay or "demo", report.problems)
    app = create_app(config, demo=True)
    if any_user:  # the test kit's login mode (idp/web/kit_login.py); never in `idp serve`
        from idp.web.kit_login import LoginScript, install

        install(app, LoginScript(any_user=True))
        click.echo("any-user mode: the login form signs in any demo username, no password")
    base = config.issuer
    click.echo(f"idp demo on {base}  (demo credentials: for the demo only)")
    click.echo(f"  login      {base}/login")
    click.echo(f"  account    {base}/account")
    click.echo(f"  health     {base}/healthz  {base}/readyz")
    click.echo(f"  SAML       {base}/saml/metadata")
    click.echo(f"  AWS SSO    {base}/saml/idp-initiated?sp=urn:amazon:webservices")
    click.echo(f"  OIDC       {base}/.well-known/openid-configuration")
    click.echo(f"  STS        aws sts get-caller-identity --endpoint-url {base}/sts")
    click.echo(f"  SSO start  {base}/start  (sso_start_url of an AWS sso-session)")
    for user, password, groups in DEMO_LOGINS:
        click.echo(f"  user       {user} / {password}  ({groups})")
    click.echo(f"  TOTP       dave's authenticator secret {DEMO_TOTP_SECRET} "
               "(role Operator requires MFA)")
    from idp.web.serving import RequestHandler

    run_simple(host, port, app, threaded=True, use_reloader=False,
               request_handler=RequestHandler)


@main.group()
def keys() -> None:
    """Manage signing keys (RSA-2048 and EC P-256 with self-signed certificates)."""


_keys_dir = click.option("--dir", "directory", default=lambda: os.environ.get("IDP_KEYS_DIR",
                         "keys"), show_default="keys", type=click.Path(file_okay=False))
_audit_config = click.option("--config", "config_path", envvar="IDP_CONFIG",
                             type=click.Path(dir_okay=False),
                             help="config whose audit sink records this action")


def _admin_event(config_path: str | None, event: str, **fields: Any) -> None:
    """Audit an administrative action when a config names the audit sink."""
    if config_path:
        from idp.audit.events import admin_event

        admin_event(_load(config_path), event, **fields)


@keys.command("init")
@_keys_dir
@click.option("--cn", default="idp", show_default=True, help="certificate common name")
@_audit_config
def keys_init(directory: str, cn: str, config_path: str | None) -> None:
    """Create an active and a next key per algorithm, unless keys exist."""
    created = init_keys(Path(directory), cn)
    if created:
        _admin_event(config_path, "CreateSigningKeys", additional={
            "folder": directory, "keyIds": [e["kid"] for e in list_keys(Path(directory))]})
    click.echo("created keys" if created else "keys already exist; nothing changed")
    _print_keys(Path(directory))


@keys.command("rotate")
@_keys_dir
@click.option("--cn", default="idp", show_default=True)
@_audit_config
def keys_rotate(directory: str, cn: str, config_path: str | None) -> None:
    """next → active → retired; retired keys are removed; a new next key is made."""
    try:
        entries = rotate_keys(Path(directory), cn)
    except IdpError as exc:
        raise click.ClickException(exc.description) from exc
    _admin_event(config_path, "RotateSigningKeys", additional={
        "folder": directory, "activeKeyIds": [e["kid"] for e in entries
                                              if e["state"] == "active"]})
    _print_keys(Path(directory))


@keys.command("list")
@_keys_dir
@click.option("--json", "as_json", is_flag=True)
def keys_list(directory: str, as_json: bool) -> None:
    """List keys with their state."""
    if as_json:
        click.echo(json.dumps(list_keys(Path(directory)), indent=2))
    else:
        _print_keys(Path(directory))


def _print_keys(directory: Path) -> None:
    for e in list_keys(directory):
        click.echo(f"{e['state']:8} {e['alg']}  {e['kid']}  {e['created']}")


@main.group()
def sts() -> None:
    """Operate the STS."""


@sts.command("revoke-sessions")
@click.option("--config", "config_path", envvar="IDP_CONFIG", required=True,
              type=click.Path(dir_okay=False))
@click.option("--before", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
              help="revoke sessions issued before this time (default: now; naive = UTC)")
@click.argument("role_arn")
def sts_revoke_sessions(config_path: str, before: datetime | None, role_arn: str) -> None:
    """Refuse every temporary credential of ROLE_ARN issued before a time (AWS's "revoke
    active sessions"): later requests signed with them get ``ExpiredToken``/``AccessDenied``."""
    from idp.iam import IamModel
    from idp.store import open_store
    from idp.sts.credentials import CredentialStore

    config = _load(config_path)
    if config.store.url.lower().startswith("memory://"):
        raise click.ClickException(
            "the memory:// store lives inside the running idp process: this command cannot "
            "reach it (use a Redis store shared by the server and this command)")
    try:
        IamModel.from_config(config.iam, config.issuer).role(role_arn)
    except IdpError as exc:
        raise click.ClickException(f"no role `{role_arn}`") from exc
    if before is not None and before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    store = open_store(
        config.store.url, socket_timeout=config.store.socket_timeout,
        wait_replicas=config.store.wait_replicas, wait_timeout_ms=config.store.wait_timeout_ms)
    try:
        when = CredentialStore(store, config.secret_key.encode(), time.time).revoke_role_sessions(
            role_arn, int(before.timestamp()) if before else None)
    except IdpError as exc:
        raise click.ClickException(exc.description) from exc
    finally:
        store.close()
    from idp.audit.events import admin_event

    admin_event(config, "RevokeRoleSessions",
                resources=[{"ARN": role_arn, "type": "AWS::IAM::Role"}],
                additional={"issuedBefore": when})
    click.echo(f"sessions of {role_arn} issued before "
               f"{datetime.fromtimestamp(when, UTC).isoformat()} are revoked")


users.add_command(mfa_cli)
main.add_command(users)
main.add_command(policy)
main.add_command(mock_s3)
main.add_command(mock_sp)
main.add_command(mock_rp)
main.add_command(audit)

if __name__ == "__main__":  # pragma: no cover
    main()
