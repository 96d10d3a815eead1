"""Changing one's own password: the current password proves it is the person, the new one
meets the password rules (:mod:`idp.directory.policy`), then the directory stores it.

File directory: a fresh argon2id hash (RFC 9106).  OpenLDAP: the Password Modify extended
operation (RFC 3062) bound as the person, so the server's own policy (ppolicy: history,
minimum age, quality) applies and its refusal is shown in words.  Active Directory: a
``unicodePwd`` delete-and-add modify as the person, over LDAPS (MS-ADTS §3.1.1.3.1.5.2).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from idp.audit import Auditor, RequestInfo
from idp.directory import Directory, Identity
from idp.directory.policy import PasswordPolicy, context_words
from idp.errors import AuthenticationFailed, PasswordRejected


@runtime_checkable
class PasswordChanging(Protocol):
    """A directory where a person may change their own password."""

    def change_password(self, username: str, current: str, new: str) -> None:
        """Store ``new``; raise :class:`AuthenticationFailed` when ``current`` is wrong and
        :class:`PasswordRejected` when the directory refuses ``new``."""
        ...


class PasswordChangeService:
    """Check, change, audit."""

    def __init__(self, directory: Directory, policy: PasswordPolicy, auditor: Auditor) -> None:
        self.directory = directory
        self.policy = policy
        self.auditor = auditor

    def unmet(self, identity: Identity, new: str) -> list[str]:
        """Every password rule ``new`` does not meet, as sentences."""
        words = context_words(identity.username, identity.email,
                              identity.attributes.get("name"))
        return [u.message for u in self.policy.check(new, words)]

    def change(self, identity: Identity, current: str, new: str, confirm: str,
               request: RequestInfo) -> None:
        """Change the password of ``identity`` or raise :class:`PasswordRejected` (every
        reason at once) / :class:`AuthenticationFailed` (wrong current password)."""
        reasons = self.unmet(identity, new)
        if new != confirm:
            reasons.append("the two new passwords differ")
        if new and new == current:
            reasons.append("the new password must differ from the current one")
        if not current:
            reasons.append("give your current password")
        if reasons:
            self._audit(identity, request, "PasswordRejected")
            raise PasswordRejected(reasons)
        if not isinstance(self.directory, PasswordChanging):
            raise PasswordRejected(["this directory does not allow password changes here"])
        try:
            self.directory.change_password(identity.username, current, new)
        except AuthenticationFailed:
            self._audit(identity, request, "FailedAuthentication")
            raise
        except PasswordRejected as exc:
            self._audit(identity, request, "PasswordRejected", exc.debug)
            raise
        self._audit(identity, request, None)

    def _audit(self, identity: Identity, request: RequestInfo, error: str | None,
               debug: str = "") -> None:
        self.auditor.emit("ChangePassword", request, user=identity.username,
                          event_type="AwsConsoleSignIn", error_code=error,
                          error_message="Password not changed" if error else None,
                          additional={"reason": debug} if debug else None)
