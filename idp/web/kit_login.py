"""Scripted browser steps of the test kit: ``next_login`` and the ``any_user`` login mode.

Nothing here is reachable from a configuration file: the hook exists only in an app the test
kit (:class:`idp.testing.IdpServer`) built and passed to :func:`install` with its own
:class:`LoginScript`.  ``create_app`` never installs it, so ``idp serve`` and ``idp demo``
cannot sign anyone in without a password.

- A queued :class:`ScriptedLogin` makes the next visit to ``/login`` sign that person in
  (a real IdP session, audited as ``Login`` with ``scripted: true``) and go on to ``next``;
  its ``consent`` answers the next OIDC consent page of that session.
- ``any_user`` makes a login form POST (CSRF-checked) with the username of a person the
  directory knows sign them in without a password (mock-oauth2-server's interactive login).
- A scripted login with ``mfa`` goes on to the second step page, which answers for that
  session once with the code of the person's enrolled authenticator, verified by the real
  MFA service (spent, counted and audited as a typed code is); the session is elevated as
  ``/login/mfa`` elevates it, so a later ``acr_values`` request or a role that requires MFA
  is satisfied without another page.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from flask import Flask, redirect, request
from werkzeug.wrappers import Response

from idp.directory import Identity, valid_username
from idp.login.sessions import IdpSession
from idp.mfa.service import MfaError
from idp.oidc import OAuthRequest
from idp.oidc.authorize import NeedConsent
from idp.web import security
from idp.web.context import (
    any_session,
    components,
    current_session,
    request_info,
    safe_next,
    set_current_session,
)
from idp.web.oidc import _grantee, _oauth_request, _result, provider

Consent = Literal["allow", "deny"]
SecondFactor = Literal["totp"]
CodeSource = Callable[[str], list[str]]
"""The codes to try for a person (now, and the next step: a step is spent once)."""


@dataclass(frozen=True)
class ScriptedLogin:
    username: str
    consent: Consent = "allow"
    mfa: SecondFactor | None = None


@dataclass
class LoginScript:
    """What the kit asked the login flow to do, shared with the server thread."""

    queue: deque[ScriptedLogin] = field(default_factory=deque)
    any_user: bool = False
    consent: dict[str, Consent] = field(default_factory=dict)  # by IdP session ID
    mfa: dict[str, SecondFactor] = field(default_factory=dict)  # by IdP session ID
    codes: CodeSource | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, login: ScriptedLogin) -> None:
        with self.lock:
            self.queue.append(login)

    def pop(self) -> ScriptedLogin | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def clear(self) -> None:
        with self.lock:
            self.queue.clear()
            self.consent.clear()
            self.mfa.clear()
            self.any_user = False


def install(app: Flask, script: LoginScript) -> None:
    """Hook ``script`` into ``app``'s login and consent pages (kit apps only)."""

    def hook() -> Response | None:
        if request.path == "/login":
            return _login(script)
        if request.path == "/login/mfa" and request.method == "GET":
            return _second_step(script)
        if request.path == "/oauth2/authorize" and "decision" not in request.form:
            return _consent(script)
        return None

    app.before_request(hook)
    app.extensions["idp_testing_script"] = script


def _sign_in(identity: Identity, next_path: str | None, how: str
             ) -> tuple[Response, IdpSession]:
    comps = components()
    prior = current_session()
    sess = comps.sessions.create(identity, previous_id=prior.id if prior else None)
    comps.auditor.emit("Login", request_info(), user=identity.username,
                       event_type="AwsConsoleSignIn",
                       additional={"groups": list(identity.groups), "amr": sess.amr,
                                   "scripted": how})
    resp: Response = redirect(safe_next(next_path), code=303)  # type: ignore[assignment]
    security.set_session_cookie(resp, sess)
    return resp, sess


def _login(script: LoginScript) -> Response | None:
    if request.method == "GET":
        login = script.pop()
        if login is None:
            return None
        identity = components().directory.lookup(login.username)
        if identity is None:
            return None
        next_path = request.args.get("next")
        if login.mfa is not None:
            next_path = "/login/mfa?" + urlencode({"next": safe_next(next_path)})
        resp, sess = _sign_in(identity, next_path, "next_login")
        with script.lock:
            script.consent[sess.id] = login.consent
            if login.mfa is not None:
                script.mfa[sess.id] = login.mfa
        return resp
    if not script.any_user or not security.csrf_ok():
        return None
    username = request.form.get("username", "")
    identity = components().directory.lookup(username) if valid_username(username) else None
    if identity is None:
        return None  # the ordinary form answers: wrong username or password
    return _sign_in(identity, request.form.get("next"), "any_user")[0]


def _second_step(script: LoginScript) -> Response | None:
    """Answer ``/login/mfa`` for a scripted session with the authenticator's code."""
    sess = any_session()
    if sess is None or script.codes is None:
        return None
    with script.lock:
        method = script.mfa.pop(sess.id, None)
        consent = script.consent.pop(sess.id, None)
    if method is None:
        return None
    svc = components().mfa
    assert svc is not None
    for code in script.codes(sess.username):
        try:
            verified = svc.verify(sess.username, method, code, request_info())
            break
        except MfaError:
            continue
    else:
        return None  # the page itself says why
    new = components().sessions.elevate(sess, verified.amr, verified.at)
    set_current_session(new)
    with script.lock:
        if consent is not None:
            script.consent[new.id] = consent
    resp: Response = redirect(safe_next(request.args.get("next")),  # type: ignore[assignment]
                              code=303)
    security.set_session_cookie(resp, new)
    return resp


def _consent(script: LoginScript) -> Response | None:
    sess = current_session()
    if sess is None:
        return None
    with script.lock:
        decision = script.consent.get(sess.id)
    if decision is None:
        return None
    source = request.form if request.method == "POST" else request.args
    result = provider().authorize(_oauth_request(source), _grantee())
    if isinstance(result, NeedConsent):
        with script.lock:
            script.consent.pop(sess.id, None)
        answer = OAuthRequest({"resume": result.resume}, None, request_info())
        result = provider().consent(answer, _grantee(), decision == "allow")
    return _result(result)
