"""The session store: a small key/value protocol with TTLs and atomic one-time values.

Keys are ``idp:<kind>:<id>`` (see :func:`key`); every key has a TTL; one-time values (codes,
replay markers) are consumed atomically with :meth:`Store.take` (Redis ``GETDEL``) or claimed
with :meth:`Store.add` (``SET NX``).  Backends: ``memory://`` (one process, the embedded
default) and Redis (``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://``).
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Protocol, runtime_checkable

from idp.errors import ConfigError

KEY_PREFIX = "idp"


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


def open_store(url: str, *, socket_timeout: float | None = None) -> Store:
    """Open the backend a URL names: ``memory://`` or a Redis URL.

    ``socket_timeout`` (``store.socket_timeout`` in the config) bounds Redis connects and reads
    unless the URL's own ``?socket_timeout=`` says otherwise; the memory store ignores it.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from idp.store.memory import MemoryStore

        return MemoryStore()
    if scheme in {"redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster",
                  "rediss+cluster", "unix"}:
        from idp.store.redis import RedisStore

        return RedisStore.from_url(url, socket_timeout=socket_timeout)
    raise ConfigError([f"store.url: unsupported scheme `{scheme or url}`"])
