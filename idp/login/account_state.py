"""What a right password still has to say about the account: must it be changed now, does
it expire soon.

The directory reports what it knows in :class:`idp.directory.AccountStatus` (OpenLDAP
ppolicy's ``pwdReset`` and expiry warning, Active Directory's ``pwdLastSet=0``, the users
file's ``must_change`` and ``password_changed_at``); the optional maximum age of the
``passwords`` config (NIST SP 800-63B §5.1.1.2 advises against it, so it is off by default)
is applied here to the directories that only say when the password was set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from idp.config import PasswordPolicyConfig
from idp.directory import Identity

DAY = 86400


@dataclass(frozen=True)
class AccountNotice:
    """After sign-in: ``must_change`` sends the person to the change form before anything
    else (``reason`` says why, for the audit); ``expires_in`` (seconds) is shown as a
    warning."""

    must_change: bool = False
    reason: str | None = None
    expires_in: int | None = None
    grace_logins: int | None = None

    def warning(self) -> str | None:
        """The sentence shown after sign-in, e.g. ``your password expires in 5 days``."""
        if self.expires_in is None:
            if self.grace_logins is not None:
                return (f"your password has expired: {self.grace_logins} more sign-ins are "
                        "allowed before you must change it")
            return None
        days = max(1, math.ceil(self.expires_in / DAY))
        return f"your password expires in {days} day{'s' if days != 1 else ''}"


def assess(identity: Identity, config: PasswordPolicyConfig, now: float) -> AccountNotice:
    """The notice for a person who just gave the right password."""
    status = identity.status
    if status.must_change:
        return AccountNotice(must_change=True, reason="PasswordMustChange")
    expires_in = status.expires_in
    if expires_in is None and config.max_age_days is not None and status.changed_at is not None:
        expires_in = int(status.changed_at + config.max_age_days * DAY - now)
        if expires_in <= 0:
            return AccountNotice(must_change=True, reason="PasswordExpired")
        if expires_in > config.expiry_warning_days * DAY:
            expires_in = None
    return AccountNotice(expires_in=expires_in, grace_logins=status.grace_logins)
