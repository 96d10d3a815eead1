"""One-time codes sent by email or text message: issued, limited, checked once.

A code is ``code_digits`` (6–8) random digits, valid ``code_ttl`` seconds (5 minutes by
default), kept in the store only as an HMAC (``idp:mfacode:<h(user, purpose)>``), compared in
constant time and spent with ``GETDEL`` when it matches (NIST SP 800-63B §5.1.3.1: single use,
at most 10 minutes).  Sending is limited (each refusal raises :class:`SendRefused` with the
seconds to wait): one send per ``resend_interval`` per person and purpose
(``idp:mfasend:gap:…``, ``SET NX``), ``sends_per_person`` and ``sends_per_ip`` per
``send_window`` (``idp:mfasend:p:…``, ``idp:mfasend:ip:…``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from idp.config import MfaConfig
from idp.store import Store, key


class SendRefused(Exception):
    def __init__(self, retry_after: int, reason: str) -> None:
        self.retry_after = retry_after
        self.reason = reason
        super().__init__(reason)


def _h(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SentCodes:
    def __init__(self, store: Store, config: MfaConfig, mac_key: bytes) -> None:
        self.store = store
        self.config = config
        self.mac_key = mac_key

    def _mac(self, code: str) -> str:
        return hmac.new(self.mac_key, code.encode(), hashlib.sha256).hexdigest()

    def allow_send(self, username: str, purpose: str, ip: str) -> None:
        """Count a send, or raise :class:`SendRefused` (resend interval, person, IP)."""
        c = self.config
        user = username.strip().casefold()
        if c.resend_interval and not self.store.add(
                key("mfasend", "gap:" + _h(user, purpose)), b"1", c.resend_interval):
            raise SendRefused(c.resend_interval, "resend interval")
        for k, limit, why in ((key("mfasend", "p:" + _h(user)), c.sends_per_person, "person"),
                              (key("mfasend", "ip:" + _h(ip)), c.sends_per_ip, "ip")):
            if self.store.incr(k, c.send_window) > limit:
                raise SendRefused(self.store.ttl(k) or c.send_window, f"send limit ({why})")

    def issue(self, username: str, purpose: str, factor_id: str) -> str:
        """A new code for ``purpose`` (replacing any earlier one), bound to ``factor_id``."""
        code = "".join(secrets.choice("0123456789") for _ in range(self.config.code_digits))
        record = {"mac": self._mac(code), "fid": factor_id}
        self.store.set(self._key(username, purpose), json.dumps(record).encode(),
                       self.config.code_ttl)
        return code

    def check(self, username: str, purpose: str, code: str) -> str | None:
        """The factor ID the code was sent for, if it is the live code (then spent)."""
        k = self._key(username, purpose)
        raw = self.store.get(k)
        if raw is None:
            return None
        record = json.loads(raw)
        given = code.strip().replace(" ", "")
        if not (given.isascii() and given.isdigit()) or not hmac.compare_digest(
                self._mac(given), str(record["mac"])):
            return None
        if self.store.take(k) is None:  # spent by a concurrent check
            return None
        return str(record["fid"])

    def _key(self, username: str, purpose: str) -> str:
        return key("mfacode", _h(username.strip().casefold(), purpose))
