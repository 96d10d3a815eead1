"""The store's epoch: when its current data began, to notice that it lost data.

A replay cache (one-time markers claimed with ``SET NX``) protects only while the store keeps
its markers.  A Redis restarted without persistence, a failover to a replica that had not
received them yet, or the ``memory://`` store in a new process forget them silently, and an
assertion used before would be accepted again.  So the store holds one more key,
``idp:epoch`` (value: the Unix time the epoch started), created with ``SET NX`` when missing:
by the first process that finds it missing, whether the store is new or lost its data (the
two cannot be told apart, and need not be).  A replay-cache user refuses what was issued
before the epoch started (:meth:`StoreEpoch.issued_before`): what it may have seen used is
gone, so it cannot tell a first use from a replay.

The marker is read after the one-time marker is claimed, so a loss between the two is seen
too (:meth:`StoreEpoch.claim` does both in one round trip, the read after the claim).  It
has a TTL like every key (:data:`EPOCH_TTL`) and each process renews it at most once a day.
An epoch that expires unused only starts a new one: what was issued in the second before
is refused, nothing is accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from idp.store import Store

EPOCH_KEY = "idp:epoch"
EPOCH_TTL = 400 * 86400
RENEW_EVERY = 86400

log = logging.getLogger("idp.store")


class StoreEpoch:
    """Reads (and creates when missing) the epoch marker of a store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._renewed = float("-inf")
        self._lock = threading.Lock()

    def start(self) -> float:
        """When the store's current data began (Unix time); starts an epoch if none."""
        return self._begun(self.store.get(EPOCH_KEY))

    def claim(self, marker: str, ttl: int) -> tuple[bool, float]:
        """Claim a one-time ``marker`` (``SET NX`` with ``ttl``) and read the epoch after it,
        in one round trip: whether the marker was new, and when the store's data began."""
        claimed, raw = self.store.add_then_get(marker, b"1", ttl, EPOCH_KEY)
        return claimed, self._begun(raw)

    def _begun(self, raw: bytes | None) -> float:
        """The epoch from the marker's value ``raw`` as read; starts one if it was missing."""
        now = self.clock()
        if raw is None:
            if self.store.add(EPOCH_KEY, repr(now).encode(), EPOCH_TTL):
                log.warning("store epoch started at %s: the store is new or lost its data; "
                            "one-time values issued before are refused",
                            datetime.fromtimestamp(now, UTC).isoformat())
                with self._lock:
                    self._renewed = now
                return now
            raw = self.store.get(EPOCH_KEY)  # another process started it first
            if raw is None:
                return now
        with self._lock:
            renew = now - self._renewed > RENEW_EVERY
            if renew:
                self._renewed = now
        if renew:
            self.store.expire(EPOCH_KEY, EPOCH_TTL)
        try:
            return float(raw)
        except ValueError:
            log.error("store epoch marker `%s` is not a time: a new epoch starts", EPOCH_KEY)
            self.store.set(EPOCH_KEY, repr(now).encode(), EPOCH_TTL)
            return now

    def issued_before(self, issued_at: float, start: float | None = None) -> bool:
        """``True`` if something issued at ``issued_at`` predates the epoch (``start``, as
        :meth:`claim` read it, or read now).

        In whole seconds, the resolution of SAML ``IssueInstant`` and JWT ``iat``: what was
        issued, used and lost within the second the epoch starts in is not told apart."""
        return issued_at < int(self.start() if start is None else start)
