"""The one error hierarchy of the project.

Every error carries a client-safe ``code`` and ``description`` and an internal ``debug``
string that is logged, never sent.  Protocol packages subclass :class:`IdpError` with the codes
of their own specifications (OAuth ``error`` values, SAML status URNs, AWS error codes).
"""

from __future__ import annotations


class IdpError(Exception):
    """Base of every error the IdP raises on purpose."""

    code: str = "server_error"
    status: int = 500
    description: str = "the request could not be processed"

    def __init__(
        self,
        description: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        debug: str = "",
    ) -> None:
        if description is not None:
            self.description = description
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.debug = debug
        super().__init__(self.description)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, description={self.description!r})"


class ConfigError(IdpError):
    """The configuration has problems; ``problems`` lists every one of them."""

    code = "invalid_config"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid configuration")


class UnavailableError(IdpError):
    """A backend the IdP depends on cannot be reached."""

    code = "temporarily_unavailable"
    status = 503
    description = "the service is temporarily unavailable"


class StoreUnavailable(UnavailableError):
    """The session store (Redis) cannot be reached."""


class DirectoryUnavailable(UnavailableError):
    """The user directory (LDAP) cannot be reached."""


class AuthenticationFailed(IdpError):
    """Wrong username or password.  One message for every cause: no user enumeration."""

    code = "invalid_credentials"
    status = 401
    description = "invalid username or password"


class AccountRefused(AuthenticationFailed):
    """The password was right but the account may not sign in (disabled, locked, expired).

    The person sees the generic message of :class:`AuthenticationFailed`; ``reason``
    (``AccountDisabled``, ``AccountLocked``, ``PasswordExpired``) goes to the audit trail."""

    def __init__(self, reason: str, *, debug: str = "") -> None:
        super().__init__(debug=debug or reason)
        self.reason = reason


class PasswordRejected(IdpError):
    """A new password refused: by the password rules or by the directory (e.g. ppolicy's
    "password in history").  ``reasons`` are sentences for the person, every one at once."""

    code = "password_rejected"
    status = 400
    description = "the new password was refused"

    def __init__(self, reasons: list[str], *, debug: str = "") -> None:
        super().__init__("; ".join(reasons) or None, debug=debug)
        self.reasons = reasons


class TooManyAttempts(IdpError):
    """Throttled: too many failed attempts for this account or client."""

    code = "too_many_attempts"
    status = 429
    description = "too many failed attempts, try again later"

    def __init__(self, retry_after: int, *, debug: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(debug=debug)


class KeyStoreError(IdpError):
    """A signing key is missing or unusable."""

    code = "key_error"
