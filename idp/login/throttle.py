"""Login throttling that caps guessing without handing attackers a lockout button.

Three fixed-window counters live in the store (OWASP Authentication Cheat Sheet, "Protect
Against Automated Attacks"; the device-cookie scheme of OWASP's "Slow Down Online Guessing
Attacks with Device Cookies"):

* per client IP (``idp:lock:ip:<ip>``): failures from one address, whatever the username;
* per account, for untrusted clients (``idp:lock:acct:<h(user)>``): at most
  ``account_failures_per_hour`` (≤ 100) failed guesses an hour against one account from
  browsers that never signed in as that user;
* per device (``idp:lock:dev:<h(device)>``): a browser that once signed in as the user holds a
  signed device cookie; its failures count on its own small budget, and the account and IP
  counters don't apply to it.  An attacker who exhausts the untrusted budget therefore cannot
  lock the victim out of their usual browser, and new browsers wait at most one window.

Counters are keyed by a hash of the casefolded username: unknown and known users are throttled
alike (no enumeration), and the store never holds attacker-chosen strings as keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from idp.config import LoginConfig
from idp.errors import TooManyAttempts
from idp.store import Store, key

HOUR = 3600


def _h(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def normalize(username: str) -> str:
    return username.strip().casefold()


@dataclass(frozen=True)
class Device:
    """A verified device cookie: which user it signed in as, and its own ID."""

    user_hash: str
    device_id: str


class Throttle:
    """Check and count failed logins."""

    def __init__(self, store: Store, config: LoginConfig, secret: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self._secret = hashlib.sha256(b"device|" + secret).digest()
        self.clock = clock

    # -- device cookies -------------------------------------------------------------------
    def issue_device(self, username: str) -> str:
        """A signed device token for a browser that just signed in as ``username``."""
        body = {"u": _h(normalize(username)), "d": secrets.token_urlsafe(16),
                "e": int(self.clock()) + self.config.device_cookie_days * 86400}
        raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
        mac = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
        return raw.decode() + "." + mac

    def verify_device(self, token: str | None, username: str) -> Device | None:
        """The device, if the token is ours, unexpired and was issued for this username."""
        if not token or len(token) > 512 or "." not in token:
            return None
        raw, mac = token.rsplit(".", 1)
        good = hmac.new(self._secret, raw.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, mac):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(raw.encode()))
            user_hash, device_id, expires = str(body["u"]), str(body["d"]), int(body["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < self.clock() or not hmac.compare_digest(user_hash,
                                                             _h(normalize(username))):
            return None
        return Device(user_hash, device_id)

    # -- counting ---------------------------------------------------------------------------
    def _counter(self, username: str, device: Device | None) -> tuple[str, str, int]:
        """The counter that applies to this attempt (device or account), and its limit."""
        if device is not None:
            return "dev", key("lock", f"dev:{_h(device.device_id)}"), \
                self.config.device_failures_per_hour
        return "acct", key("lock", f"acct:{_h(normalize(username))}"), \
            self.config.account_failures_per_hour

    def check(self, username: str, ip: str, device: Device | None) -> None:
        """Raise :class:`TooManyAttempts` when this attempt must wait."""
        kind, k, limit = self._counter(username, device)
        counters = [(kind, k, limit)]
        if device is None:
            counters.append(("ip", key("lock", f"ip:{ip}"), self.config.ip_failures_per_window))
        values = self.store.get_many([ck for _, ck, _ in counters])  # one round trip
        for (name, ck, lim), raw in zip(counters, values, strict=True):
            if raw is not None and int(raw) >= lim:
                retry = self.store.ttl(ck) or 1
                raise TooManyAttempts(retry, debug=f"{name} limit reached")

    def record_failure(self, username: str, ip: str, device: Device | None) -> bool:
        """Count a failure; ``True`` when it just reached a limit (a lockout begins)."""
        _, k, limit = self._counter(username, device)
        reached = self.store.incr(k, HOUR) == limit
        if device is None:
            n = self.store.incr(key("lock", f"ip:{ip}"), self.config.ip_window)
            reached = reached or n == self.config.ip_failures_per_window
        return reached
