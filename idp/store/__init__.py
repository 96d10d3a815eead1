"""The session store: a small key/value protocol with TTLs and atomic one-time values.

Keys are ``idp:<kind>:<id>`` (see :func:`key`); every key has a TTL; one-time values (codes,
replay markers) are consumed atomically with :meth:`Store.take` (Redis ``GETDEL``) or claimed
with :meth:`Store.add` (``SET NX``); a one-time value exchanged for new ones (a refresh token
rotated, a code redeemed) goes in one step with :meth:`Store.swap`, whose keys share a hash
slot (a ``{tag}``, see :func:`hash_slot`) so that it also holds on Redis Cluster.
Independent reads and writes of one request go in one round trip with :meth:`Store.get_many`
and :meth:`Store.set_many`; a one-time marker claimed together with the store's epoch read
(:mod:`idp.store.epoch`) with :meth:`Store.add_then_get`.
Backends: ``memory://`` (one process, the embedded default) and Redis
(``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://``).
"""

from __future__ import annotations

import binascii
import json
import secrets
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from idp.errors import ConfigError

KEY_PREFIX = "idp"
CLUSTER_SLOTS = 16384
Write = tuple[str, bytes, int]
"""One write of :meth:`Store.swap`: ``(key, value, ttl)``."""


def key(kind: str, ident: str) -> str:
    """The store key of an object: ``idp:<kind>:<id>``."""
    return f"{KEY_PREFIX}:{kind}:{ident}"


def new_id(nbytes: int = 16) -> str:
    """A random identifier from :mod:`secrets`, at least 128 bits, URL-safe."""
    if nbytes < 16:
        raise ValueError("identifiers need at least 128 bits")
    return secrets.token_urlsafe(nbytes)


def check_ttl(ttl: int) -> int:
    """Validate a TTL for a write: every key has one, a whole number of seconds > 0."""
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TypeError(f"ttl must be an int of seconds, not `{type(ttl).__name__}`")
    if ttl <= 0:
        raise ValueError(f"ttl must be > 0 seconds, not `{ttl}`")
    return ttl


def hash_slot(k: str) -> int:
    """The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its ``{tag}`` if it has a
    non-empty one, else of the whole key, modulo 16384 (Redis Cluster specification, "Keys
    distribution model" and "Hash tags")."""
    data = k.encode()
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return binascii.crc_hqx(data, 0) % CLUSTER_SLOTS


def check_swap(spent: str, writes: Sequence[Write]) -> None:
    """Validate a :meth:`Store.swap`: distinct keys in one hash slot, every write with a TTL.

    Every backend checks the same rule, so a swap that would fail on Redis Cluster
    (``CROSSSLOT``) fails the same way on the memory store and a standalone server.
    """
    keys = [spent, *(w[0] for w in writes)]
    if len(set(keys)) != len(keys):
        raise ValueError("swap keys must be distinct")
    if len({hash_slot(k) for k in keys}) != 1:
        raise ValueError(f"swap keys must share one hash slot (a `{{tag}}`), not `{keys}`")
    for _, value, ttl in writes:
        if not isinstance(value, bytes):
            raise TypeError(f"values are bytes, not `{type(value).__name__}`")
        check_ttl(ttl)


@runtime_checkable
class Store(Protocol):
    """What the IdP needs from a store.  Every write takes a TTL in seconds (> 0).

    Backends raise :class:`idp.errors.StoreUnavailable` when the server cannot be reached,
    :class:`ValueError` for a TTL <= 0 (see :func:`check_ttl`) and for :meth:`incr` on a
    value that is not an integer.
    """

    def get(self, key: str) -> bytes | None:
        """The value, or ``None`` when missing or expired."""
        ...

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Write ``value`` with a TTL, replacing any previous value."""
        ...

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Write only if the key does not exist (``SET NX``); ``True`` if written."""
        ...

    def take(self, key: str) -> bytes | None:
        """Read and delete atomically (``GETDEL``): a one-time value is returned once."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in their order (``None`` where missing), in one round trip
        (Redis ``MGET``; on a Cluster, where the keys may lie in different slots, a pipeline
        of ``GET``).  Each value is as :meth:`get` would read it."""
        ...

    def set_many(self, writes: Sequence[Write]) -> None:
        """:meth:`set` each ``(key, value, ttl)`` in order, in one round trip.  Not atomic:
        a failure may leave the first ones written, as the same writes one by one would."""
        ...

    def add_then_get(self, key: str, value: bytes, ttl: int,
                     read: str) -> tuple[bool, bytes | None]:
        """:meth:`add` ``key``, then :meth:`get` ``read`` after it, in one round trip: whether
        ``key`` was written, and the value of ``read`` once it was (on one server the read
        follows the write; on Cluster, keys of two slots are read and written on their own
        primaries)."""
        ...

    def add_then_get_many(self, key: str, value: bytes, ttl: int,
                          reads: Sequence[str]) -> tuple[bool, list[bytes | None]]:
        """:meth:`add_then_get` with any number of keys read after the claim (as
        :meth:`get_many` reads them; none: just :meth:`add`), in one round trip on one
        server."""
        ...

    def swap(self, key: str, expected: bytes, writes: Sequence[Write]) -> bool:
        """Spend a one-time value and write what replaces it, in one atomic step.

        If ``key`` holds ``expected``: delete it, write every ``(key, value, ttl)`` and return
        ``True``.  Otherwise (missing, spent by someone else, another value) change nothing and
        return ``False``.  When the backend fails (:class:`StoreUnavailable`, e.g. Redis out of
        memory) nothing changed either: the old value is never lost without its replacement.
        All keys must share one hash slot (:func:`check_swap`), else :class:`ValueError`.
        """
        ...

    def delete(self, key: str) -> bool:
        """Delete; ``True`` if the key existed."""
        ...

    def incr(self, key: str, ttl: int) -> int:
        """Increment a counter; the TTL is set when the counter is created (a fixed window)."""
        ...

    def expire(self, key: str, ttl: int) -> bool:
        """Set a new TTL on an existing key; ``False`` if the key does not exist."""
        ...

    def ttl(self, key: str) -> int | None:
        """Seconds left before the key expires, or ``None`` when it does not exist."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the backend answers."""
        ...

    def durability_warnings(self) -> list[str]:
        """What in the backend's settings may lose security keys (replay markers,
        revocations, refresh tokens): no persistence, an eviction policy.  Empty when safe."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def get_json(store: Store, k: str) -> Any:
    """Read a JSON value (``None`` when missing)."""
    raw = store.get(k)
    return None if raw is None else json.loads(raw)


def set_json(store: Store, k: str, value: Any, ttl: int) -> None:
    """Write a JSON value with a TTL."""
    store.set(k, json.dumps(value, separators=(",", ":")).encode(), ttl)


def take_json(store: Store, k: str) -> Any:
    """Consume a one-time JSON value atomically (``None`` when missing or already taken)."""
    raw = store.take(k)
    return None if raw is None else json.loads(raw)


def open_store(url: str, *, socket_timeout: float | None = None, wait_replicas: int = 0,
               wait_timeout_ms: int = 100) -> Store:
    """Open the backend a URL names: ``memory://`` or a Redis URL.

    ``socket_timeout`` (``store.socket_timeout`` in the config) bounds Redis connects and reads
    unless the URL's own ``?socket_timeout=`` says otherwise; the memory store ignores it.
    ``wait_replicas`` and ``wait_timeout_ms`` (``store.wait_replicas``…) make every Redis
    write wait for that many replicas (see :class:`idp.store.redis.RedisStore`).
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from idp.store.memory import MemoryStore

        if wait_replicas:
            raise ConfigError(["store.wait_replicas: memory:// has no replicas"])
        return MemoryStore()
    if scheme in {"redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster",
                  "rediss+cluster", "unix"}:
        from idp.store.redis import RedisStore

        return RedisStore.from_url(url, socket_timeout=socket_timeout,
                                   wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms)
    raise ConfigError([f"store.url: unsupported scheme `{scheme or url}`"])
