"""Account states an LDAP directory keeps: OpenLDAP's password policy overlay and Active
Directory's ``userAccountControl``, mapped to one outcome.

- OpenLDAP ppolicy (draft-behera-ldap-password-policy-11 §5.3): ``pwdAccountLockedTime``
  (locked; the value ``000001010000Z`` means locked by an administrator until unlocked, which
  is how a person is disabled) and ``pwdReset`` (the password was reset by an administrator
  and must be changed, §5.3.7).
- Active Directory (MS-ADTS §2.2.16, ``userAccountControl`` flags): ``ACCOUNTDISABLE``
  (0x2), ``LOCKOUT`` (0x10), ``PASSWORD_EXPIRED`` (0x800000); ``pwdLastSet`` = 0 means the
  password must be changed at the next logon (MS-ADA3 ``Pwd-Last-Set``).  AD refuses the bind
  of such an account with result 49 and a diagnostic ``data XXX`` sub-code, which is read
  through the same mapping (:func:`reason_from_bind_message`).

The attributes are read with the service account in the same search that finds the user.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from idp.directory import AccountStatus

PPOLICY_CONTROL = "1.3.6.1.4.1.42.2.27.8.5.1"
"""The password policy request and response control (draft-behera-ldap-password-policy-11
§6.1), sent with the person's bind; its answer carries expiry warnings and grace logins."""

_PPOLICY_ERRORS = {0: "PasswordExpired", 1: "AccountLocked", 2: "PasswordMustChange"}

STATE_ATTRIBUTES = ("pwdAccountLockedTime", "pwdReset", "userAccountControl", "pwdLastSet")

ACCOUNTDISABLE = 0x2
LOCKOUT = 0x10
PASSWORD_EXPIRED = 0x800000
ADMIN_LOCK = "000001010000Z"

# AD's bind diagnostic sub-codes ("80090308: LdapErr: DSID-0C09042A, comment:
# AcceptSecurityContext error, data 775, v4563"): only given when the password was right
_AD_BIND_CODES = {"530": "AccountRestricted", "531": "AccountRestricted",
                  "532": "PasswordExpired", "533": "AccountDisabled",
                  "701": "AccountExpired", "773": "PasswordMustChange",
                  "775": "AccountLocked"}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def refusal(first: Callable[[str], str | None]) -> str | None:
    """Why the entry may not sign in (``AccountDisabled``, ``AccountLocked``,
    ``PasswordExpired``), or ``None``.  ``first(name)`` reads an attribute's first value."""
    locked = first("pwdAccountLockedTime")
    if locked is not None:
        return "AccountDisabled" if locked == ADMIN_LOCK else "AccountLocked"
    uac = _int(first("userAccountControl"))
    if uac is not None:
        if uac & ACCOUNTDISABLE:
            return "AccountDisabled"
        if uac & LOCKOUT:
            return "AccountLocked"
        if uac & PASSWORD_EXPIRED:
            return "PasswordExpired"
    return None


def status(first: Callable[[str], str | None],
           bind: PpolicyResponse | None = None) -> AccountStatus:
    """The status of an entry that may sign in: must the password be changed now, does it
    expire soon (the bind's ppolicy response)."""
    reset = (first("pwdReset") or "").upper() == "TRUE"
    bind = bind or PpolicyResponse()
    return AccountStatus(must_change=reset or first("pwdLastSet") == "0"
                         or bind.error == "PasswordMustChange",
                         expires_in=bind.time_before_expiration,
                         grace_logins=bind.grace_remaining)


@dataclass(frozen=True)
class PpolicyResponse:
    """The decoded ``PasswordPolicyResponseValue`` (draft-behera §6.2)."""

    time_before_expiration: int | None = None
    grace_remaining: int | None = None
    error: str | None = None


def _tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    """One BER tag-length-value (X.690 §8.1) at ``at``: tag, content, next offset."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported BER length")
        length = int.from_bytes(data[at:at + n], "big")
        at += n
    if at + length > len(data):
        raise ValueError("truncated BER value")
    return tag, data[at:at + length], at + length


def decode_ppolicy(value: bytes | None) -> PpolicyResponse:
    """Decode ``SEQUENCE { warning [0] CHOICE { timeBeforeExpiration [0] INTEGER,
    graceAuthNsRemaining [1] INTEGER } OPTIONAL, error [1] ENUMERATED OPTIONAL }``
    (draft-behera-ldap-password-policy-11 §6.2); anything malformed reads as no news."""
    if not value:
        return PpolicyResponse()
    try:
        tag, body, _ = _tlv(value, 0)
        if tag != 0x30:
            return PpolicyResponse()
        at, expiry, grace, error = 0, None, None, None
        while at < len(body):
            tag, content, at = _tlv(body, at)
            if tag == 0xA0:  # warning, a constructed CHOICE
                inner, number, _ = _tlv(content, 0)
                n = int.from_bytes(number, "big") if number else 0
                if inner == 0x80:
                    expiry = n
                elif inner == 0x81:
                    grace = n
            elif tag == 0x81:  # error
                error = _PPOLICY_ERRORS.get(int.from_bytes(content, "big") if content else 0)
        return PpolicyResponse(expiry, grace, error)
    except (IndexError, ValueError):
        return PpolicyResponse()


def reason_from_bind_message(message: str | None) -> str | None:
    """The account state in an Active Directory bind refusal's diagnostic message."""
    match = re.search(r"\bdata ([0-9a-f]{3})\b", message or "")
    return _AD_BIND_CODES.get(match.group(1)) if match else None
