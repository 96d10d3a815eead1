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

from idp.directory import AccountStatus

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


def status(first: Callable[[str], str | None]) -> AccountStatus:
    """The status of an entry that may sign in: must the password be changed now."""
    reset = (first("pwdReset") or "").upper() == "TRUE"
    return AccountStatus(must_change=reset or first("pwdLastSet") == "0")


def reason_from_bind_message(message: str | None) -> str | None:
    """The account state in an Active Directory bind refusal's diagnostic message."""
    match = re.search(r"\bdata ([0-9a-f]{3})\b", message or "")
    return _AD_BIND_CODES.get(match.group(1)) if match else None
