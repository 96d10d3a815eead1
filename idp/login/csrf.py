"""CSRF tokens: the signed double-submit pattern.

A random value lives in an HttpOnly, SameSite=Lax cookie; forms carry
HMAC-SHA256(secret, value).  An attacker can neither read the cookie nor forge the HMAC
(OWASP CSRF Prevention Cheat Sheet, "Signed Double-Submit Cookie").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

CSRF_COOKIE = "idp_csrf"


def new_binding() -> str:
    """A fresh random cookie value (256 bits)."""
    return secrets.token_urlsafe(32)


def csrf_token(secret: bytes, binding: str) -> str:
    """The form token for a cookie value."""
    mac = hmac.new(secret, b"csrf|" + binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_csrf(secret: bytes, binding: str | None, token: str | None) -> bool:
    """Constant-time check that ``token`` belongs to ``binding``."""
    if not binding or not token or len(token) > 128 or len(binding) > 128:
        return False
    return hmac.compare_digest(csrf_token(secret, binding), token)
