"""Time-based one-time passwords (RFC 6238) with pyotp: 6 digits, 30-second steps, SHA-1.

A code is accepted for its own step and one step either side (RFC 6238 §5.2's
"one time step" of network delay); the caller remembers the step it matched so that the same
code is never accepted twice (ibid.: "the verifier MUST NOT accept the second attempt").
"""

from __future__ import annotations

import hmac
import io

import pyotp
import segno

STEP = 30
DIGITS = 6
WINDOW = 1


def new_secret() -> str:
    """160 random bits in base32 (RFC 4226 §4 R6 recommends 160)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def match(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` is valid for (±1 step around ``now``), or ``None``.

    Compared in constant time; a code that is not ``DIGITS`` ASCII digits never matches."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = int(now) // STEP
    found = None
    for s in range(step - WINDOW, step + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(s), code):
            found = s
    return found


def code_at(secret: str, now: float) -> str:
    """The code for the step of ``now`` (for tests and the demo)."""
    return pyotp.TOTP(secret).at(int(now))
