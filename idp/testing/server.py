"""``IdpServer``: the real IdP application over real HTTP on a free loopback port.

The app is :func:`idp.app.create_app` on components opened from a config that
:mod:`idp.testing.config` validates exactly as the YAML config is validated; it is served by
werkzeug's threaded server in a daemon thread.  The socket is bound first (port 0: the kernel
picks a free port, no race), so the issuer URL names the real port.  Signing keys are made once
per process and shared by every server that names no ``keys_dir``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from flask import Flask
from requests import Session
from werkzeug.serving import BaseWSGIServer, make_server

from idp.app import Components, build_components, create_app
from idp.audit import Auditor, MemorySink
from idp.directory.file import FileDirectory
from idp.login.csrf import CSRF_COOKIE, csrf_token, new_binding
from idp.testing import kit_mfa, oidc_mint, oidc_presets, saml_mint, saml_presets, sts_mint
from idp.testing.config import KIT_HASHER, KitConfig, kit_config, materialise
from idp.testing.errors import KitError
from idp.testing.mount import Mount
from idp.testing.recording import RecordedRequest, Recorder
from idp.testing.serving import QuietHandler
from idp.web.kit_login import Consent, LoginScript, ScriptedLogin, SecondFactor, install

_ISSUER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_KEYS_LOCK = threading.Lock()
_KEYS_DIR: Path | None = None


def shared_keys_dir() -> Path:
    """One keys folder per process (RSA key generation is the slow part of a start)."""
    global _KEYS_DIR
    with _KEYS_LOCK:
        if _KEYS_DIR is None:
            _KEYS_DIR = Path(tempfile.mkdtemp(prefix="idp-testing-keys-"))
        return _KEYS_DIR


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


class IdpServer:
    """A kit IdP: ``with IdpServer(users=[...]) as idp: ...`` (or ``start()``/``stop()``).

    ``config`` is a :class:`~idp.testing.config.KitConfig` or a mapping of its fields; keyword
    fields are merged into it.  ``store_url`` is ``memory://`` by default, or a Redis URL.
    """

    def __init__(self, config: KitConfig | Mapping[str, Any] | None = None, *,
                 store_url: str = "memory://", host: str = "127.0.0.1", port: int = 0,
                 keys_dir: Path | None = None, any_user: bool = False,
                 issuers: Mapping[str, KitConfig | Mapping[str, Any] | None] | None = None,
                 **fields: Any) -> None:
        self.kit = kit_config(config, **fields)
        bad = [n for n in issuers or {} if not _ISSUER_NAME.fullmatch(n)]
        if bad:
            raise KitError(f"issuer name `{bad[0]}` is not [a-z0-9-], 1-32 characters")
        self.issuers: dict[str, IdpServer] = {
            name: IdpServer(cfg, store_url=store_url, host=host, any_user=any_user)
            for name, cfg in (issuers or {}).items()}
        """The other issuers of this server, by name: each at ``<url>/<name>`` with its own
        keys, users, clients and store."""
        self.store_url = store_url
        self.host = host
        self.port = port
        self.keys_dir = keys_dir
        self.url = ""
        self.start_seconds = 0.0
        self.audit = MemorySink()
        self.passwords: dict[str, str] = {}
        self._app: Flask | None = None
        self._components: Components | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: Path | None = None
        self._revoked: list[str] = []
        self._any_user = any_user
        self._script = LoginScript(any_user=any_user, codes=self._codes)
        self._recorder: Recorder | None = None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> IdpServer:
        if self._server is not None:
            return self
        began = time.perf_counter()
        self._tmp = Path(tempfile.mkdtemp(prefix="idp-testing-"))
        try:
            self._server = make_server(self.host, self.port, _not_ready, threaded=True,
                                       request_handler=QuietHandler)
            self.url = f"http://{self.host}:{self._server.server_port}"
            self._build()
        except BaseException:
            self.stop()
            raise
        assert self._server is not None and self._app is not None
        root = self.wsgi(self._app)
        if self.issuers:
            mounted = {}
            for name, child in self.issuers.items():
                mounted[name] = child._mounted(self, name)
            root = Mount(root, mounted)
        self._server.app = root
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"idp-testing {self.url}", daemon=True)
        self._thread.start()
        self.start_seconds = time.perf_counter() - began
        return self

    def _mounted(self, parent: IdpServer, name: str) -> Any:
        """Build this issuer under ``parent``'s URL at ``/<name>``; its WSGI app."""
        assert parent._tmp is not None
        began = time.perf_counter()
        self.url = f"{parent.url}/{name}"
        self._tmp = parent._tmp / name
        self.keys_dir = self.keys_dir or shared_keys_dir() / f"issuer-{name}"
        self._build(cookie_name=f"idp_session_{name.replace('-', '_')}")
        self.start_seconds = time.perf_counter() - began
        return self.wsgi(self.app)

    def _build(self, cookie_name: str = "idp_session") -> None:
        assert self._tmp is not None
        mat = materialise(self.kit, self._tmp, issuer=self.url, store_url=self.store_url,
                          keys_dir=self.keys_dir or shared_keys_dir(), cookie_name=cookie_name)
        self.passwords = mat.passwords
        directory = FileDirectory(mat.users_file, hasher=KIT_HASHER)
        comps = build_components(mat.config, demo=self.kit.demo, auditor=Auditor(self.audit),
                                 directory=directory)
        self._components = comps
        kit_mfa.enrol(comps, self.kit)
        self._app = create_app(mat.config, comps, demo=self.kit.demo)

    def wsgi(self, app: Flask) -> Any:
        """The WSGI application served: the Flask app with the kit's login script hooked in,
        inside the request recorder."""
        install(app, self._script)
        self._recorder = Recorder(app.wsgi_app, self.components.config.web.max_form_bytes)
        app.wsgi_app = self._recorder  # type: ignore[method-assign]
        return app

    def stop(self) -> None:
        for child in self.issuers.values():
            child.stop()
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(5)
            self._server.server_close()
        if self._components is not None:
            self._components.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._server = self._thread = self._components = self._app = self._tmp = None

    def reset(self) -> None:
        """Forget what one test did: audit records, revocations made by the ``revoked``
        preset, recorded requests and scripted logins (``any_user`` returns to the value
        the server was started with)."""
        self.audit.records.clear()
        if self._recorder is not None:
            self._recorder.clear()
        self._script.clear()
        self._script.any_user = self._any_user
        for child in self.issuers.values():
            child.reset()
        if self._revoked and self._components is not None:
            sts_mint.unrevoke(self._components, self._revoked)
        self._revoked.clear()

    def __enter__(self) -> IdpServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what it is -------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return self.url

    @property
    def components(self) -> Components:
        if self._components is None:
            raise KitError("the IdpServer is not started")
        return self._components

    @property
    def app(self) -> Flask:
        if self._app is None:
            raise KitError("the IdpServer is not started")
        return self._app

    @property
    def saml_metadata_url(self) -> str:
        return self.url + "/saml/metadata"

    @property
    def saml_entity_id(self) -> str:
        return self.url + "/saml/metadata"

    @property
    def saml_sso_url(self) -> str:
        return self.url + "/saml/sso"

    @property
    def sts_url(self) -> str:
        return self.url + "/sts"

    def certificate(self) -> str:
        """The PEM certificate of the active SAML signing key (for an SP's IdP settings)."""
        return self.components.keys.active("RS256").cert_pem

    # -- headless helpers -------------------------------------------------------------------
    def login(self, user: str, *, session: Session | None = None,
              mfa: SecondFactor | None = None) -> Session:
        """A ``requests.Session`` signed in at the IdP: the real login form POST over HTTP,
        with the person's password (its CSRF token computed for a cookie set here);
        ``mfa="totp"`` then answers the second step page with the enrolled authenticator's
        code (a person with a factor is asked for it at sign-in under ``mfa.sign_in:
        enrolled``, the default; others step up)."""
        if user not in self.passwords:
            raise KitError(f"no password known for `{user}` (not a kit user)")
        s = session or Session()
        binding = s.cookies.get(CSRF_COOKIE) or new_binding()
        s.cookies.set(CSRF_COOKIE, binding, domain=self.host, path="/")
        resp = s.post(self.url + "/login", data={
            "username": user, "password": self.passwords[user],
            "csrf_token": csrf_token(self.components.secret, binding), "next": "/account"},
            allow_redirects=False, timeout=10)
        if resp.status_code != 303:
            raise KitError(f"login of `{user}` refused ({resp.status_code})")
        if mfa is not None:
            token = csrf_token(self.components.secret, binding)
            for code in kit_mfa.codes(self.components, user):
                resp = s.post(self.url + "/login/mfa", data={
                    "method": "totp", "code": code, "csrf_token": token, "next": "/account"},
                    allow_redirects=False, timeout=10)
                if resp.status_code == 303:
                    break
            else:
                raise KitError(f"second step of `{user}` refused ({resp.status_code})")
        return s

    # -- scripted browser steps -------------------------------------------------------------
    def _codes(self, user: str) -> list[str]:
        return kit_mfa.codes(self.components, user)

    def next_login(self, user: str, *, consent: Consent = "allow",
                   mfa: SecondFactor | None = None) -> None:
        """The next visit to the login page signs ``user`` in without typing, and the next
        OIDC consent page of that session answers ``consent`` (``allow`` or ``deny``).

        ``mfa="totp"``: the second step page (``/login/mfa``) then completes by itself with
        a code computed from the person's enrolled authenticator, verified by the real MFA
        service, so the session says MFA (``amr`` ``otp``/``mfa``, REFEDS MFA); without it
        the scripted sign-in is the password alone, and a step-up page is left to the test."""
        if consent not in ("allow", "deny"):
            raise KitError(f"consent must be `allow` or `deny`, not `{consent}`")
        if mfa not in (None, "totp"):
            raise KitError(f"mfa must be `totp` or None, not `{mfa}`")
        if self.components.directory.lookup(user) is None:
            raise KitError(f"no user `{user}` in the kit's directory")
        if mfa is not None:
            kit_mfa.totp_secret(self.components, user)  # refused now, not in the page
        self._script.push(ScriptedLogin(user, consent, mfa))

    @property
    def any_user(self) -> bool:
        """Whether the login form takes any known username without a password."""
        return self._script.any_user

    @any_user.setter
    def any_user(self, value: bool) -> None:
        self._script.any_user = bool(value)

    # -- recorded requests ------------------------------------------------------------------
    def requests(self, kind: str | None = None) -> list[RecordedRequest]:
        """Every request received since the last ``reset()`` (of ``kind``: ``saml_sso``,
        ``authorize``, ``token``, ``sts``… see :data:`idp.testing.recording.KINDS`)."""
        return self._recorder.all(kind) if self._recorder is not None else []

    def take_request(self, kind: str | None = None, *, timeout: float = 2.0
                     ) -> RecordedRequest:
        """The oldest recorded request (of ``kind``), removed from the record; waits up to
        ``timeout`` seconds for one."""
        found = self._recorder.take(kind, timeout) if self._recorder is not None else None
        if found is None:
            raise KitError(f"no {kind or 'request'} received within {timeout} s")
        return found

    def saml_response(self, sp: str, user: str, *, relay_state: str | None = None,
                      in_response_to: str | None = None, name_id_format: str | None = None,
                      acs_url: str | None = None, preset: str | None = None,
                      mfa: bool = False, **overrides: Any) -> saml_mint.SamlPost:
        """A signed SAMLResponse for ``user`` at ``sp`` (an entity ID), ready to POST to its
        ACS; ``overrides`` replace assertion fields (``audience``, ``recipient``, ``now``,
        ``lifetime``, ``attributes``…) or the Response ``destination``; ``preset`` names a
        failure preset (:data:`idp.testing.saml_presets.PRESETS`); ``mfa``: a session with a
        second factor (``AuthnContextClassRef`` REFEDS MFA, ``AuthnInstant`` at the factor)."""
        minted, relay = saml_mint.prepare(
            self.components, sp, user, in_response_to=in_response_to,
            name_id_format=name_id_format, acs_url=acs_url, relay_state=relay_state,
            mfa=mfa, **overrides)
        if preset is None:
            return saml_mint.post(minted, saml_mint.sign(minted), relay)
        return saml_mint.post(minted, saml_presets.apply(preset, minted), relay)

    def id_token(self, client: str, user: str, *, claims: Mapping[str, Any] | None = None,
                 scopes: list[str] | None = None, nonce: str | None = None,
                 preset: str | None = None, mfa: bool = False) -> str:
        """An ID token for ``user`` at ``client``; ``claims`` are merged in (``None``
        removes one); ``preset`` names an OIDC failure preset
        (:data:`idp.testing.oidc_presets.PRESETS`); ``mfa``: a session with an authenticator
        code (``amr`` ``pwd``/``otp``/``mfa``, ``acr`` REFEDS MFA)."""
        token = oidc_mint.id_token(self.components, client, user, claims=claims,
                                   scopes=scopes, nonce=nonce, mfa=mfa)
        if preset is None:
            return token
        return oidc_presets.apply(preset, self.components, token)

    def access_token(self, client: str, user: str | None = None, *,
                     claims: Mapping[str, Any] | None = None,
                     scopes: list[str] | None = None) -> str:
        """A JWT access token for ``user`` at ``client`` (or for the client alone)."""
        return oidc_mint.access_token(self.components, client, user, claims=claims,
                                      scopes=scopes)

    def sts_credentials(self, user: str, role: str, *, policy: str | None = None,
                        duration: int | None = None, preset: str | None = None,
                        mfa: bool | None = None) -> sts_mint.Credentials:
        """Temporary credentials for ``user`` in ``role`` (a name or an ARN) from this IdP's
        STS (``AssumeRoleWithSAML`` over HTTP); ``policy`` is a session policy (JSON).
        ``mfa``: the assertion says REFEDS MFA, so the session has
        ``aws:MultiFactorAuthPresent`` (default: when the person has an enrolled factor, as
        their sign-in would).
        ``preset``: ``expired`` (issued by the STS an hour ago) or ``revoked`` (every session
        of the role issued until now, and in the next second, is revoked until ``reset()``)."""
        comps = self.components
        if preset == "expired":
            return sts_mint.expired(comps, user, role, policy)
        if preset not in (None, "revoked"):
            raise KitError(f"unknown STS preset `{preset}` (expired, revoked)")
        if mfa is None:
            mfa = kit_mfa.has_factor(comps, user)
        params = sts_mint.assume_params(comps, user, role, policy=policy, duration=duration,
                                        mfa=mfa)
        resp = requests.post(self.sts_url, data=params, timeout=10)
        creds = sts_mint.parse_result(resp.status_code, resp.content)
        if preset == "revoked":
            self._revoked.extend(sts_mint.revoke(comps, creds))
        return creds
