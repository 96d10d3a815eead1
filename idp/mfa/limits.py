"""Wrong-code counters that slow guessing without a button that locks the owner out.

Only factors that can be guessed are ever locked: TOTP and sent codes (6–8 digits).  Each
such factor has its own fixed-window counter (``idp:mfafail:f:<h(user, factor)>``,
``factor_failures`` per ``lockout_window``), and the person has one over all of them
(``idp:mfafail:p:<h(user)>``, ``person_failures``), so spreading guesses over several
authenticators gains nothing.  Recovery codes (50 random bits: ~10^15 guesses, at argon2's
pace centuries of tries) and passkeys (a signature) are never locked: whoever made the other
factors lock (and they already hold the password, as the second step comes after it), the owner
can still sign in with those.  Every lock ends with its window (NIST SP 800-63B §5.2.2 asks
to limit failed attempts, not to disable the account).
"""

from __future__ import annotations

import hashlib

from idp.config import MfaConfig
from idp.store import Store, key

GUESSABLE = frozenset({"totp", "email", "sms"})


def _h(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _person(username: str) -> str:
    return key("mfafail", "p:" + _h(username.strip().casefold()))


def _factor(username: str, factor_id: str) -> str:
    return key("mfafail", "f:" + _h(username.strip().casefold(), factor_id))


class FailureCounters:
    def __init__(self, store: Store, config: MfaConfig) -> None:
        self.store = store
        self.config = config

    def locked_for(self, username: str, factor_id: str, kind: str) -> int:
        """Seconds until the factor may be tried again; 0 when it may be tried now."""
        if kind not in GUESSABLE:
            return 0
        for k, limit in ((_factor(username, factor_id), self.config.factor_failures),
                         (_person(username), self.config.person_failures)):
            raw = self.store.get(k)
            if raw is not None and int(raw) >= limit:
                return self.store.ttl(k) or 1
        return 0

    def record(self, username: str, factor_id: str, kind: str) -> bool:
        """Count a wrong code; ``True`` when this failure locked the factor or the person."""
        if kind not in GUESSABLE:
            return False
        window = self.config.lockout_window
        f = self.store.incr(_factor(username, factor_id), window)
        p = self.store.incr(_person(username), window)
        return f == self.config.factor_failures or p == self.config.person_failures

    def clear(self, username: str, factor_id: str) -> None:
        """A right code ends the factor's count (the person's count runs out by itself)."""
        self.store.delete(_factor(username, factor_id))

    def reset(self, username: str, factor_ids: list[str]) -> None:
        self.store.delete(_person(username))
        for fid in factor_ids:
            self.store.delete(_factor(username, fid))
