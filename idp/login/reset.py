"""Forgotten password: a single-use link, valid 15 minutes, sent by e-mail (RFC 5321 SMTP).

``request`` answers the same whether the address is known or not (no account enumeration,
OWASP Forgot Password Cheat Sheet) and is rate limited per address and per client address.
The link carries a random token (256 bits); the store keeps only its SHA-256 under
``idp:pwreset:<hash>`` with a 15-minute TTL, consumed atomically (GETDEL) when the new
password is set, after the password rules passed, so a refused password does not spend it.
Directories that can take the reset: the file directory, and LDAP when its service account
may write passwords (``directory.ldap.password_reset``); others are refused by the caller's
check (:func:`supported`).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

from idp.audit import Auditor, RequestInfo
from idp.config import MailConfig
from idp.directory import Directory, Identity
from idp.directory.policy import PasswordPolicy, context_words
from idp.errors import PasswordRejected, UnavailableError
from idp.store import Store, key, new_id

log = logging.getLogger(__name__)

LINK_TTL = 15 * 60


@runtime_checkable
class Resettable(Protocol):
    def find_by_email(self, email: str) -> Identity | None: ...

    def reset_password(self, username: str, new: str) -> None: ...


def _allowed(directory: Directory) -> bool:
    """An LDAP directory takes resets only when configured to (``can_reset``)."""
    return bool(getattr(directory, "can_reset", True))


def supported(directory: Directory) -> bool:
    return isinstance(directory, Resettable) and _allowed(directory)


def _token_key(token: str) -> str:
    return key("pwreset", hashlib.sha256(token.encode()).hexdigest())


class PasswordReset:
    """Send reset links and set the new password."""

    def __init__(self, store: Store, directory: Directory, mail: MailConfig,
                 policy: PasswordPolicy, auditor: Auditor, issuer: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.directory, self.mail = store, directory, mail
        self.policy, self.auditor, self.issuer, self.clock = policy, auditor, issuer, clock

    def _over_limit(self, what: str) -> bool:
        n = self.store.incr(key("pwreset-rate", hashlib.sha256(what.encode()).hexdigest()),
                            3600)
        return n > self.mail.resets_per_hour

    def request(self, email: str, request: RequestInfo) -> None:
        """Send a link when ``email`` belongs to one enabled person; the same silence
        otherwise.  Never raises for an unknown address."""
        email = email.strip()[:256]
        limited = self._over_limit(f"ip:{request.source_ip}") | self._over_limit(
            f"mail:{email.casefold()}")
        person = None
        if not limited and isinstance(self.directory, Resettable) and \
                _allowed(self.directory) and "@" in email:
            person = self.directory.find_by_email(email)
        outcome = "RateLimited" if limited else ("Sent" if person else "UnknownAddress")
        self.auditor.emit("ForgotPassword", request, user=person.username if person else None,
                          additional={"outcome": outcome})
        if person is None or not person.email:
            return
        token = new_id(32)
        self.store.set(_token_key(token), person.username.encode(), LINK_TTL)
        self._send(person.email, f"{self.issuer}/account/reset?token={token}")

    def _send(self, to: str, link: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"] = self.mail.sender, to
        msg["Subject"] = "Reset your password"
        msg.set_content(f"Someone asked to reset the password of this account.\n\n"
                        f"Open this link within 15 minutes to choose a new password "
                        f"(it works once):\n\n{link}\n\nIf it was not you, ignore this "
                        f"message.\n")
        try:
            with smtplib.SMTP(self.mail.host, self.mail.port, timeout=self.mail.timeout) as s:
                if self.mail.starttls:
                    s.starttls()
                if self.mail.username and self.mail.password:
                    s.login(self.mail.username, self.mail.password)
                s.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("password reset mail not sent: %s", type(exc).__name__)

    def username_for(self, token: str) -> str | None:
        """The person a live link is for (the link is not spent)."""
        if not token or len(token) > 128:
            return None
        raw = self.store.get(_token_key(token))
        return raw.decode() if raw else None

    def complete(self, token: str, new: str, confirm: str, request: RequestInfo) -> str:
        """Set the new password; the link is spent only once the rules passed."""
        username = self.username_for(token)
        if username is None or not isinstance(self.directory, Resettable) or \
                not _allowed(self.directory):
            raise PasswordRejected(["this link has expired or was already used"])
        person = self.directory.lookup(username)
        words = context_words(username, person.email if person else None,
                              person.attributes.get("name") if person else None)
        reasons = [u.message for u in self.policy.check(new, words)]
        if new != confirm:
            reasons.append("the two new passwords differ")
        if reasons:
            raise PasswordRejected(reasons)
        left = self.store.ttl(_token_key(token))
        if self.store.take(_token_key(token)) is None:
            raise PasswordRejected(["this link has expired or was already used"])
        try:
            self.directory.reset_password(username, new)
        except (PasswordRejected, UnavailableError):
            if left:  # the directory refused or did not answer: the link still works
                self.store.set(_token_key(token), username.encode(), left)
            raise
        self.auditor.emit("ResetPassword", request, user=username,
                          event_type="AwsConsoleSignIn")
        return username
