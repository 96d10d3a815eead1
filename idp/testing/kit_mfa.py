"""Second factors of kit users: enrolled through the real MFA service, answered like an
authenticator app.

A :class:`~idp.testing.config.User` with ``totp_secret`` gets that authenticator at start
(:meth:`idp.mfa.service.MfaService.enrol_totp_secret`, the enrolment store of the ``mfa:``
section, secrets sealed as for anyone).  The kit computes codes from the enrolled secret, as
the person's app would (RFC 6238 with pyotp), never through the server's own TOTP code.
"""

from __future__ import annotations

import time

import pyotp

from idp.app import Components
from idp.audit import RequestInfo
from idp.mfa.service import MfaService
from idp.testing.config import KitConfig
from idp.testing.errors import KitError

KIT_REQUEST = RequestInfo("127.0.0.1", "idp.testing")
DEMO_PERSON = "dave"
"""The demo's person with an authenticator: enrolled whenever the demo's fixtures are on."""


def _service(comps: Components) -> MfaService:
    if comps.mfa is None:
        raise KitError("this IdP has no MFA service")
    return comps.mfa


def enrol(comps: Components, kit: KitConfig) -> None:
    """Enrol each kit user's ``totp_secret``.  The demo's fixtures enrol dave's authenticator
    at start: a kit with its own users removes it (their ``dave`` is not the demo's)."""
    svc = _service(comps)
    if kit.users is None:
        return
    if svc.enrolment(DEMO_PERSON).factors:  # the demo's, never a kit user's
        svc.reset(DEMO_PERSON, KIT_REQUEST, actor="idp.testing")
    for u in kit.users:
        if u.totp_secret and not svc.enrolment(u.username).of_kind("totp"):
            svc.enrol_totp_secret(u.username, u.totp_secret, "kit authenticator", KIT_REQUEST)


def has_factor(comps: Components, user: str) -> bool:
    return bool(_service(comps).enrolment(user).factors)


def totp_secret(comps: Components, user: str) -> str:
    """The base32 secret of ``user``'s first enrolled authenticator."""
    svc = _service(comps)
    factors = svc.enrolment(user).of_kind("totp")
    if not factors:
        raise KitError(f"`{user}` has no authenticator enrolled (give the kit user a "
                       f"`totp_secret`)")
    f = factors[0]
    return svc.box.open(f.secret, f"{user}:{f.id}").decode()


def codes(comps: Components, user: str, now: float | None = None) -> list[str]:
    """The codes an authenticator app shows for this step and the next and previous ones (the
    server accepts ±1 step): each step is spent once (RFC 6238 §5.2), so one person passes
    the second step at most three times per 30 seconds."""
    t = time.time() if now is None else now
    otp = pyotp.TOTP(totp_secret(comps, user))
    return [otp.at(t + d * otp.interval) for d in (0, 1, -1)]
