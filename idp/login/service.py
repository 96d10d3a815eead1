"""The login service: validate, throttle, authenticate, open a session, audit.

Flask-free: the blueprint hands it a :class:`LoginAttempt` and turns the result or the error
into a page.  Every outcome is audited (``Login`` with or without ``errorCode``,
``LoginLockout``); the password is never logged or stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from idp import metrics
from idp.audit import Auditor, RequestInfo
from idp.config import PasswordPolicyConfig
from idp.directory import MAX_PASSWORD, Directory, Identity, valid_username
from idp.errors import AccountRefused, AuthenticationFailed, TooManyAttempts, UnavailableError
from idp.login.account_state import AccountNotice, assess
from idp.login.sessions import IdpSession, SessionManager
from idp.login.throttle import Throttle


@dataclass(frozen=True)
class LoginAttempt:
    username: str
    password: str
    request: RequestInfo
    device_token: str | None = None
    previous_session_id: str | None = None

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"LoginAttempt(username={self.username!r}, request={self.request!r})"


@dataclass(frozen=True)
class LoginOutcome:
    session: IdpSession
    device_token: str
    second_step: str | None = None
    notice: AccountNotice = field(default_factory=AccountNotice)


SecondStep = Callable[[Identity, RequestInfo], str | None]
"""What comes after the password (see :mod:`idp.mfa.gate`): ``None`` (nothing), ``"mfa"`` (a
second factor, on its own page) or ``"enrol"`` (signed in, sent to enrol one); it raises
:class:`AuthenticationFailed` when a second factor is required and the person has none."""


class LoginService:
    """Authenticate people against the directory, with throttling and audit."""

    def __init__(self, directory: Directory, sessions: SessionManager, throttle: Throttle,
                 auditor: Auditor, second_step: SecondStep | None = None,
                 passwords: PasswordPolicyConfig | None = None) -> None:
        self.directory = directory
        self.sessions = sessions
        self.throttle = throttle
        self.auditor = auditor
        self.second_step = second_step
        self.passwords = passwords or PasswordPolicyConfig()

    def login(self, attempt: LoginAttempt) -> LoginOutcome:
        """Sign a person in, or raise AuthenticationFailed / TooManyAttempts / Unavailable."""
        username, ip = attempt.username, attempt.request.source_ip
        shown_user = username if valid_username(username) else username[:64].encode(
            "unicode_escape").decode()
        if not valid_username(username) or not attempt.password \
                or len(attempt.password) > MAX_PASSWORD:
            # refused before any directory work: an empty password would be an anonymous
            # LDAP bind (RFC 4513 §5.1.2); over-long or control characters are never valid
            self._audit_failure(shown_user, attempt, "InvalidInput")
            raise AuthenticationFailed(debug="input refused before bind")
        device = self.throttle.verify_device(attempt.device_token, username)
        try:
            self.throttle.check(username, ip, device)
        except TooManyAttempts as exc:
            self._audit_failure(shown_user, attempt, "TooManyAttempts", exc.debug)
            raise
        try:
            identity = self.directory.authenticate(username, attempt.password)
        except AccountRefused as exc:
            # counted like a wrong password, so the throttle tells nothing about the password
            self.throttle.record_failure(username, ip, device)
            self._audit_failure(shown_user, attempt, exc.reason, exc.debug)
            raise
        except AuthenticationFailed:
            locked = self.throttle.record_failure(username, ip, device)
            self._audit_failure(shown_user, attempt, "FailedAuthentication")
            if locked:
                self.auditor.emit("LoginLockout", attempt.request, user=shown_user,
                                  event_type="AwsConsoleSignIn",
                                  additional={"trustedDevice": device is not None})
            raise
        except UnavailableError as exc:
            self._audit_failure(shown_user, attempt, exc.code, exc.debug)
            raise
        step = self.second_step(identity, attempt.request) if self.second_step else None
        sess = self.sessions.create(identity, previous_id=attempt.previous_session_id,
                                    pending="mfa" if step == "mfa" else None,
                                    user_agent=attempt.request.user_agent)
        notice = assess(identity, self.passwords, time.time())
        warning = notice.warning()
        if notice.must_change or warning:
            if notice.must_change:
                sess.extra["must_change"] = notice.reason
            if warning:
                sess.extra["password_warning"] = warning
            self.sessions.save(sess)
        token = (attempt.device_token if device is not None and attempt.device_token
                 else self.throttle.issue_device(identity.username))
        metrics.signin("ok")
        extra = {"secondStep": step} if step else {}
        self.auditor.emit("Login", attempt.request, user=identity.username,
                          event_type="AwsConsoleSignIn",
                          additional={"groups": list(identity.groups), "amr": sess.amr,
                                      "trustedDevice": device is not None, **extra,
                                      **({"mustChange": notice.reason}
                                         if notice.must_change else {})})
        return LoginOutcome(sess, token, step, notice)

    def logout(self, sess: IdpSession, request: RequestInfo) -> None:
        self.sessions.destroy(sess.id)
        self.auditor.emit("Logout", request, user=sess.username, event_type="AwsConsoleSignIn")

    def _audit_failure(self, user: str, attempt: LoginAttempt, code: str,
                       debug: str = "") -> None:
        metrics.signin({"FailedAuthentication": "failed", "TooManyAttempts": "locked",
                        "InvalidInput": "refused", "AccountDisabled": "refused",
                        "AccountLocked": "refused", "PasswordExpired": "refused"}
                       .get(code, "unavailable"))
        self.auditor.emit("Login", attempt.request, user=user, event_type="AwsConsoleSignIn",
                          error_code=code, error_message="Failed authentication",
                          additional={"reason": debug} if debug else None)
