"""``create_app(config) -> Flask``: wires the pieces together.

:func:`build_components` opens the backends a config names (store, directory, keys, audit
sink) once per process; :func:`create_app` registers the blueprints of ``idp.web`` on them.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Request
from flask import Response as FlaskResponse
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import logs, metrics
from idp.audit import Auditor
from idp.audit.alerts import open_auditor
from idp.audit.events import audit_start
from idp.config import Config
from idp.directory import Directory, open_directory
from idp.errors import ConfigError, IdpError, UnavailableError
from idp.iam import IamModel
from idp.iam.model import SamlProvider
from idp.keys import KeyRing, init_keys
from idp.login.service import LoginService
from idp.login.sessions import IdpSession, SessionManager
from idp.login.throttle import Throttle
from idp.mfa.gate import SecondStepGate
from idp.mfa.policy import MfaPolicy
from idp.mfa.service import MfaService, open_service
from idp.store import Store, open_store
from idp.store.epoch import StoreEpoch


@dataclass
class Components:
    """Everything a request handler may need, opened once per process."""

    config: Config
    store: Store
    directory: Directory
    keys: KeyRing
    auditor: Auditor
    sessions: SessionManager
    throttle: Throttle
    login: LoginService
    secret: bytes
    iam: IamModel
    demo: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    mfa: MfaService | None = None
    mfa_policy: MfaPolicy | None = None

    def close(self) -> None:
        self.store.close()
        self.directory.close()
        self.auditor.close()


def build_components(config: Config, *, demo: bool = False, auditor: Auditor | None = None,
                     store: Store | None = None, directory: Directory | None = None
                     ) -> Components:
    """Open the backends a config names (or use the ones given, for tests)."""
    created = config.keys.generate and init_keys(
        config.keys.dir, common_name=config.issuer.split("://", 1)[1][:64])
    keys = KeyRing.load(config.keys.dir)
    store = store or open_store(
        config.store.url, socket_timeout=config.store.socket_timeout,
        wait_replicas=config.store.wait_replicas, wait_timeout_ms=config.store.wait_timeout_ms)
    _start_epoch(store)
    directory = directory or open_directory(config.directory)
    auditor = auditor or open_auditor(config, store)
    audit_start(auditor, config, keys, created_keys=created, demo=demo)
    secret = config.secret_key.encode()
    sessions = SessionManager(store, config.session)
    throttle = Throttle(store, config.login, secret)
    iam = IamModel.from_config(config.iam, config.issuer, demo=demo)
    mfa = open_service(config, store, auditor)
    if demo and config.mfa.enrolments_dir is not None:  # the demo's own folder, not a user's
        from idp.demo import enrol_demo_factors

        enrol_demo_factors(mfa)
    policy = MfaPolicy(config.mfa.require, mfa_roles(iam))
    login = LoginService(directory, sessions, throttle, auditor, SecondStepGate(mfa, policy),
                         passwords=config.passwords)
    return Components(config, store, directory, keys, auditor, sessions, throttle, login,
                      secret, iam, demo, extras={"roles_for": _roles_for(iam)}, mfa=mfa,
                      mfa_policy=policy)


def mfa_roles(iam: IamModel) -> list[str]:
    """Roles whose trust policy tests ``aws:MultiFactorAuthPresent``: a session without a
    second factor steps up before it picks one."""
    return [arn for arn, role in iam.roles.items()
            if any(k.lower() == "aws:multifactorauthpresent"
                   for k in role.trust_policy.context_keys)]


@dataclass
class ConfigReport:
    """What :func:`check_config` found: ``problems`` stop ``idp serve``; ``warnings`` (SAML
    metadata files it skips) do not."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_config(config: Config, *, demo: bool = False) -> ConfigReport:
    """Every problem ``idp serve`` would refuse to start with, in one pass: ``idp config
    check`` and ``idp serve`` both run this (STYLE.md §7: every problem reported at once).

    Checks, each on its own so that one failure hides no other: signing keys, the store URL,
    the directory (the users file is read and validated), the audit file's folder, the IAM
    model (references, policy documents, mappings), the SAML providers' metadata and
    certificates, the OIDC clients, and the service providers' metadata (skipped files are
    warnings, as ``serve`` skips them).  Nothing is written and no server is contacted.
    """
    from idp.oidc.clients import ClientRegistry
    from idp.saml.metadata import aws_sp, load_metadata
    from idp.sts.saml import CertCache

    report = ConfigReport()

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ConfigError as exc:
            report.problems.extend(exc.problems)
        except IdpError as exc:
            report.problems.append(f"{name}: {exc.description}"
                                   + (f" ({exc.debug})" if exc.debug else ""))
        except Exception as exc:  # noqa: BLE001 - a library's own error is a problem too
            report.problems.append(f"{name}: {exc}" if isinstance(exc, OSError | ValueError)
                                   else f"{name}: {type(exc).__name__}: {exc}")
        return None

    keys_dir = config.keys.dir
    fresh = config.keys.generate and not (keys_dir / "keys.json").exists()
    keys = None if fresh else stage("keys", lambda: KeyRing.load(keys_dir))
    stage("store.url", lambda: open_store(config.store.url).close())
    stage("directory", lambda: open_directory(config.directory).close())
    if config.audit.sink == "file" and config.audit.path is not None:
        folder = config.audit.path.resolve().parent
        if not folder.is_dir():
            report.problems.append(f"audit.path: folder `{folder}` does not exist")
    if config.audit.sink == "trail" and config.audit.integrity and not config.keys.generate:
        from idp.audit.trail import audit_key_ring

        stage("audit.keys_dir", lambda: audit_key_ring(config.audit.keys_dir))
    stage("iam", lambda: IamModel.from_config(config.iam, config.issuer, demo=demo))
    # each SAML provider's metadata on its own, even when the model has other problems; keys
    # are read only for a provider without metadata (this IdP), which is not checked here
    certs = CertCache(keys, config.issuer + "/saml/metadata")  # type: ignore[arg-type]
    for i, sc in enumerate(config.iam.saml_providers):
        if sc.metadata_xml is not None or sc.metadata_file is not None:
            provider = SamlProvider(f"saml_providers[{i}]", sc.name, "", sc.metadata_file,
                                    sc.metadata_xml)
            stage(f"iam.saml_providers[{i}] `{sc.name}` metadata",
                  functools.partial(_provider_keys, certs, provider))
    stage("oidc.clients", lambda: ClientRegistry(config.oidc.clients))
    stage("mfa.enrolments_dir", lambda: _check_enrolments(config))
    loaded = load_metadata(config.metadata_dirs, builtin=[aws_sp(config.issuer)])
    report.warnings.extend(f"SAML metadata skipped: {p}" for p in loaded.problems)
    report.warnings.extend(loaded.notices)
    return report


def _check_enrolments(config: Config) -> None:
    """The enrolments folder exists, or its parent does (it is made on first write)."""
    from idp.mfa.service import enrolments_folder

    folder = enrolments_folder(config)
    if not (folder.is_dir() or folder.parent.is_dir()):
        raise ValueError(f"folder `{folder}` does not exist and cannot be made")


def _provider_keys(certs: Any, provider: Any) -> None:
    """Parse a SAML provider's metadata and load its certificates, as the STS will."""
    if not certs.for_provider(provider)[1]:
        raise ValueError("no usable signing certificate")


def _start_epoch(store: Store) -> None:
    """Start the store's epoch now if it has none (see :mod:`idp.store.epoch`), so that only
    what was issued before this start, not before the first replay check, is refused."""
    try:
        StoreEpoch(store).start()
    except UnavailableError:
        pass  # down at start: the first replay check starts it


def _roles_for(iam: IamModel) -> Callable[[IdpSession], list[str]]:
    """The role ARNs a signed-in person may take (for ``/account``)."""

    def roles(sess: IdpSession) -> list[str]:
        return sorted({g.role_arn for g in iam.roles_for(sess.groups, sess.attributes, None)})

    return roles


class NoCookieSession(SessionInterface):
    """Flask's signed-cookie session is unused: the IdP session lives in the store
    (:mod:`idp.login.sessions`).  No serializer is built and no cookie read per request, and
    a write to ``flask.session`` raises (Flask's ``NullSession``)."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse) -> None:
        return None


def create_app(config: Config, components: Components | None = None, *,
               demo: bool = False) -> Flask:
    """The Flask application of one IdP process."""
    from idp.web import account as account_web
    from idp.web import audit as audit_web
    from idp.web import errors, health, login, saml_fast, security
    from idp.web import mfa as mfa_web
    from idp.web import oidc as oidc_web
    from idp.web import reset as reset_web
    from idp.web import saml as saml_web
    from idp.web import sso as sso_web
    from idp.web import sts as sts_web
    from idp.web.account_console import bp as account_console_bp

    logs.configure(config.logging)
    comps = components or build_components(config, demo=demo)
    app = Flask("idp.web", static_folder="static", template_folder="templates")
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # Flask's own session is unused; ours is in the store
        MAX_CONTENT_LENGTH=config.web.max_form_bytes,
        MAX_FORM_MEMORY_SIZE=config.web.max_form_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.tls,
        PREFERRED_URL_SCHEME="https" if config.tls else "http",
    )
    app.session_interface = NoCookieSession()
    app.extensions["idp"] = comps
    if config.web.trusted_proxies:
        n = config.web.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    security.init_app(app)
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(login.bp)
    mfa_web.init_app(app)
    app.register_blueprint(account_web.bp)
    app.register_blueprint(account_console_bp)
    app.register_blueprint(reset_web.bp)
    # protocol blueprints register here, one line each
    saml_web.init_app(app, comps)
    saml_fast.install(app, comps)
    oidc_web.init_app(app, comps)
    sts_web.init_app(app, comps)
    sso_web.init_app(app, comps)
    audit_web.init_app(app, comps)
    if config.metrics.enabled:
        keys = metrics.key_uses(comps.keys, metrics.audit_key_ring(comps.auditor.sink))
        metrics.install(app, config.metrics, lambda: keys)  # around the direct WSGI paths too
        comps.auditor.sink = metrics.CountingSink(comps.auditor.sink)
    # outermost: the request ID is known to everything below, logs included
    app.wsgi_app = logs.RequestIdMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app
