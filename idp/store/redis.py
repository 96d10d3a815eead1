"""The Redis store: standalone, Sentinel or Cluster, on redis-py (DESIGN.md §Real components).

URLs (DESIGN.md §Identifiers and keys in the store; redis-py ``from_url`` for query params):

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS; ``ssl_cert_reqs``,
  ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``… as redis-py parses them), and
  ``unix:///path/to/redis.sock[?db=N]``;
- ``redis+sentinel://[[user]:password@]host1:port1,host2:port2/service_name[/db]`` (and
  ``rediss+sentinel://``, TLS to the sentinels and the master).  The password is the
  master's; ``?sentinel_password=`` (and ``sentinel_username``) authenticate to the sentinels;
- ``redis+cluster://[[user]:password@]host:port[,host:port…]`` (and ``rediss+cluster://``),
  the listed nodes being startup nodes.

``?socket_timeout=`` (seconds, default 2) bounds the connect and every read;
``?socket_connect_timeout=`` overrides the connect part.  Opening a store does no I/O: a
server that is down shows up as :class:`~idp.errors.StoreUnavailable` on first use.  One-time
values use ``GETDEL`` and ``SET NX EX``; :meth:`RedisStore.incr` is one Lua script (single key,
so valid on Cluster) that sets the TTL only on a counter without one; :meth:`RedisStore.swap`
is one Lua script over keys of one hash slot.  :meth:`RedisStore.get_many` is ``MGET``,
:meth:`RedisStore.add_then_get_many` a Lua script and :meth:`RedisStore.set_many` a pipeline
without ``MULTI``; on a Cluster, where their keys may lie in different slots, all three are
pipelines (one round trip per primary concerned).

Durability (``store.wait_replicas``): with Sentinel or Cluster a primary acknowledges a write
before its replicas have it, so a failover may forget what was acknowledged (a replay marker,
a revocation, a spent refresh token).  With ``wait_replicas=N`` every write is sent with
``WAIT N timeout`` after it, in one pipeline on one connection (on a Cluster, on the node
that owns the key): WAIT answers how many replicas have this connection's writes.  Fewer than
N within ``wait_timeout_ms`` fails the call with :class:`~idp.errors.StoreUnavailable` (the
request gets its 503): a write not known to be on N replicas is not acknowledged.  It may still
be on the primary: the client was told nothing succeeded, and what it retries meets either
the old state or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.retry import Retry
from redis.sentinel import Sentinel

from idp import metrics
from idp.errors import ConfigError, StoreUnavailable
from idp.store import Write, check_swap, check_ttl

T = TypeVar("T")
log = logging.getLogger("idp.store")
Client = redis.Redis | RedisCluster

DEFAULT_TIMEOUT = 2.0
SCHEMES = {
    "redis", "rediss", "unix",
    "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster",
}
# Query parameters passed through to redis-py (its URL_QUERY_ARGUMENT_PARSERS and SSL options).
CONNECTION_PARAMS = {
    "db", "socket_timeout", "socket_connect_timeout", "socket_keepalive", "max_connections",
    "health_check_interval", "client_name", "username", "password", "protocol",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_ca_data", "ssl_certfile",
    "ssl_keyfile", "ssl_password", "ssl_check_hostname", "ssl_min_version",
}
SENTINEL_PARAMS = {"sentinel_password", "sentinel_username"}

# INCR, then a TTL on a counter that has none: it was just created (a fixed window).
INCR_LUA = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# Compare-and-spend KEYS[1], then SET the other keys.  Atomic: a script runs alone, and Redis
# refuses a script's first memory-growing write when over maxmemory (before anything changed)
# but lets a script that already wrote finish, so the SETs come before the DEL.
SWAP_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 2], 'EX', ARGV[2 * i - 1])
end
redis.call('DEL', KEYS[1])
return 1
"""

# SET NX EX KEYS[1], then GET KEYS[2]: {1 if written else 0, the value} (a missing value is
# Lua false in the table, a nil in the reply).  One script: nothing runs between the two.
ADD_GET_LUA = """
local added = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) and 1 or 0
return {added, redis.call('MGET', unpack(KEYS, 2))}
"""


def _problem(message: str) -> ConfigError:
    return ConfigError([f"store.url: {message}"])


def _no_retry_on_timeout() -> Retry:
    """Retry once, at once, on a dropped connection; never on a timeout (bounded waits)."""
    return Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


def _split_hosts(hosts: str, default_port: int, safe_url: str) -> list[tuple[str, int]]:
    """``h1:p1,h2:p2`` (``[v6]:port`` allowed) as (host, port) pairs."""
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        item = item.strip()
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise _problem(f"missing host in `{safe_url}`")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise _problem(f"bad port `{port_text}` in `{safe_url}`") from None
        if not 0 < port < 65536:
            raise _problem(f"port `{port}` out of range in `{safe_url}`")
        nodes.append((unquote(host), port))
    return nodes


class _ParsedUrl:
    """The parts of a store URL, with the secrets kept apart from what may be logged."""

    def __init__(self, url: str, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        if not default_timeout > 0:
            raise _problem(f"socket_timeout must be > 0, not `{default_timeout}`")
        self.default_timeout = default_timeout
        scheme, sep, rest = url.partition("://")
        self.scheme = scheme.lower()
        if not sep or self.scheme not in SCHEMES:
            raise _problem(f"unsupported scheme `{scheme if sep else url}`")
        self.base, _, self.mode = self.scheme.partition("+")
        netloc, _, tail = rest.partition("/") if not rest.startswith("/") else ("", "", rest[1:])
        path, _, self.query = tail.partition("?")
        if "?" in netloc:  # redis://host?x=y, no path
            netloc, _, self.query = netloc.partition("?")
        self.path = path.split("#", 1)[0]
        userinfo, at, self.hosts = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        self.username = unquote(user) or None
        self.password = unquote(password) or None
        self.params = {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}
        self.secrets = [s for s in (self.password, self.params.get("password"),
                                    self.params.get("sentinel_password"),
                                    self.params.get("ssl_password")) if s]
        shown_user = quote(self.username or "") + (":***" if self.password else "")
        safe_query = "&".join(
            f"{k}={'***' if 'password' in k else v}" for k, v in self.params.items()
        )
        self.safe_url = (
            f"{self.scheme}://{shown_user + '@' if at else ''}{self.hosts}"
            f"{'/' + self.path if self.path else ''}{'?' + safe_query if safe_query else ''}"
        )
        allowed = CONNECTION_PARAMS | (SENTINEL_PARAMS if self.mode == "sentinel" else set())
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise _problem(f"unknown parameter `{unknown[0]}` in `{self.safe_url}`")
        if self.base == "unix" and self.mode:
            raise _problem(f"unsupported scheme `{scheme}`")

    def timeouts(self) -> dict[str, float]:
        """``socket_timeout`` (default 2 s) and ``socket_connect_timeout`` (default the same)."""
        out: dict[str, float] = {}
        for name, default in (("socket_timeout", self.default_timeout),
                              ("socket_connect_timeout", None)):
            text = self.params.get(name)
            try:
                value = float(text) if text is not None else (default or out["socket_timeout"])
            except ValueError:
                raise _problem(f"`{name}` must be a number of seconds, not `{text}`") from None
            if not value > 0:
                raise _problem(f"`{name}` must be > 0, not `{text}`")
            out[name] = value
        return out

    def connection_kwargs(self) -> dict[str, Any]:
        """Typed connection options from the query, parsed the way redis-py parses them."""
        query = "&".join(f"{k}={quote(v)}" for k, v in self.params.items()
                         if k not in SENTINEL_PARAMS)
        try:
            kwargs: dict[str, Any] = parse_url(f"redis://localhost/?{query}")  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise _problem(f"{exc} (`{self.safe_url}`)") from None
        kwargs.pop("host", None)
        kwargs.update(self.timeouts())
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        if self.base == "rediss":
            kwargs["ssl"] = True
        return kwargs


class NotReplicated(RedisError):
    """``WAIT`` counted fewer replicas than ``wait_replicas`` within ``wait_timeout_ms``."""


class RedisStore:
    """A :class:`idp.store.Store` on a Redis server, a Sentinel-managed master or a Cluster."""

    def __init__(
        self,
        connect: Callable[[], Client],
        *,
        safe_url: str,
        secrets: list[str] | None = None,
        on_close: Callable[[], None] | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 100,
    ) -> None:
        if wait_replicas < 0 or wait_timeout_ms <= 0:
            raise ValueError("wait_replicas must be >= 0 and wait_timeout_ms > 0")
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._connect = connect
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._on_close = on_close
        self.safe_url = safe_url
        self._secrets = [s for s in (secrets or []) if s]

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float | None = None, wait_replicas: int = 0,
                 wait_timeout_ms: int = 100) -> RedisStore:
        """Open a store from a URL (see the module docstring); :class:`ConfigError` if bad.

        ``socket_timeout`` is the default for a URL without ``?socket_timeout=`` (2 s if
        ``None``); ``wait_replicas`` and ``wait_timeout_ms``: see the module docstring.
        """
        parsed = _ParsedUrl(url, DEFAULT_TIMEOUT if socket_timeout is None else socket_timeout)
        if parsed.mode == "sentinel":
            store = cls._sentinel(parsed)
        elif parsed.mode == "cluster":
            store = cls._cluster(parsed)
        else:
            store = cls._standalone(url, parsed)
        if wait_replicas < 0 or wait_timeout_ms <= 0:
            raise _problem("wait_replicas must be >= 0 and wait_timeout_ms > 0")
        store.wait_replicas, store.wait_timeout_ms = wait_replicas, wait_timeout_ms
        return store

    @classmethod
    def _standalone(cls, url: str, parsed: _ParsedUrl) -> RedisStore:
        if "," in parsed.hosts:
            raise _problem(f"several hosts need `redis+sentinel://` or `redis+cluster://`, "
                           f"not `{parsed.safe_url}`")
        if parsed.base == "unix" and not parsed.path:
            raise _problem(f"missing socket path in `{parsed.safe_url}`")
        if parsed.base != "unix":
            try:
                urlsplit(url).port  # noqa: B018  (validates the port)
            except ValueError:
                raise _problem(f"bad port in `{parsed.safe_url}`") from None
            if parsed.path.strip("/") and not parsed.path.strip("/").isdigit():
                raise _problem(f"database must be a number, not `/{parsed.path}`")
        timeouts = parsed.timeouts()
        try:
            client = redis.Redis.from_url(url, retry=_no_retry_on_timeout(), **timeouts)
        except ValueError as exc:
            raise _problem(f"{exc} (`{parsed.safe_url}`)") from None
        return cls(lambda: client, safe_url=parsed.safe_url, secrets=parsed.secrets)

    @classmethod
    def _sentinel(cls, parsed: _ParsedUrl) -> RedisStore:
        nodes = _split_hosts(parsed.hosts, 26379, parsed.safe_url)
        service, _, db_text = parsed.path.strip("/").partition("/")
        if not service:
            raise _problem(f"missing service name in `{parsed.safe_url}`")
        kwargs = parsed.connection_kwargs()
        if db_text:
            if not db_text.isdigit():
                raise _problem(f"database must be a number, not `{db_text}`")
            kwargs["db"] = int(db_text)
        sentinel_kwargs: dict[str, Any] = {
            k: v for k, v in kwargs.items()
            if k.startswith(("socket_", "ssl")) and k != "db"
        }
        for name in ("sentinel_password", "sentinel_username"):
            if parsed.params.get(name):
                sentinel_kwargs[name.removeprefix("sentinel_")] = parsed.params[name]
        sentinel_kwargs["retry"] = _no_retry_on_timeout()
        sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            service, retry=_no_retry_on_timeout(), **kwargs
        )

        def close_sentinels() -> None:
            for s in sentinel.sentinels:
                s.close()

        return cls(lambda: client, safe_url=parsed.safe_url, secrets=parsed.secrets,
                   on_close=close_sentinels)

    @classmethod
    def _cluster(cls, parsed: _ParsedUrl) -> RedisStore:
        pairs = _split_hosts(parsed.hosts, 6379, parsed.safe_url)
        nodes = [ClusterNode(h, p) for h, p in pairs]  # type: ignore[no-untyped-call]
        if parsed.path.strip("/") not in {"", "0"}:
            raise _problem(f"a cluster has only database 0, not `/{parsed.path}`")
        kwargs = parsed.connection_kwargs()
        if kwargs.pop("db", 0):
            raise _problem("a cluster has only database 0")

        def connect() -> Client:
            # RedisCluster reads the slot map when built: done lazily, on first use.
            return RedisCluster(startup_nodes=nodes, retry=Retry(NoBackoff(), 1), **kwargs)

        return cls(connect, safe_url=parsed.safe_url, secrets=parsed.secrets)

    # -- plumbing ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"RedisStore({self.safe_url!r})"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return text

    def _get_client(self) -> Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
        return client

    def _call(self, op: str, fn: Callable[[Client], T]) -> T:
        """Run one command; every redis-py failure becomes :class:`StoreUnavailable`."""
        started = time.perf_counter()
        try:
            return fn(self._get_client())
        except ResponseError as exc:
            text = str(exc)
            if text.startswith("WRONGTYPE") or "not an integer" in text:
                raise ValueError(f"{op}: {self._scrub(text)}") from None
            raise self._unavailable(op, exc) from exc
        except (RedisError, RedisClusterException, OSError) as exc:
            raise self._unavailable(op, exc) from exc
        finally:
            metrics.backend_latency("store", op.split(" ", 1)[0], time.perf_counter() - started)

    def _write(self, op: str, key: str, command: Callable[[Any], object]) -> Any:
        """Run one write: alone, or followed by ``WAIT`` when ``wait_replicas`` is set (see the
        module docstring).  ``command`` issues it on a client or a pipeline."""
        if not self.wait_replicas:
            return self._call(op, command)
        return self._call(op, lambda c: self._replicated(c, key, command))

    def _replicated(self, client: Client, key: str, command: Callable[[Any], object]) -> Any:
        """The write then ``WAIT`` in one pipeline, on one connection to the key's primary."""
        node: redis.Redis = (
            client.get_redis_connection(client.get_node_from_key(key))  # type: ignore[no-untyped-call]
            if isinstance(client, RedisCluster) else client)
        pipe = node.pipeline(transaction=False)
        command(pipe)
        pipe.wait(self.wait_replicas, self.wait_timeout_ms)
        try:
            *results, acked = pipe.execute()
        except (RedisError, OSError):
            if isinstance(client, RedisCluster):  # a failover moved the slot: read the map again
                with contextlib.suppress(RedisError, RedisClusterException, OSError):
                    client.nodes_manager.initialize()  # type: ignore[no-untyped-call]
            raise
        if int(acked) < self.wait_replicas:
            raise NotReplicated(f"{acked} of {self.wait_replicas} replicas acknowledged the "
                                f"write within {self.wait_timeout_ms} ms")
        return results[0] if len(results) == 1 else results

    def _unavailable(self, op: str, exc: BaseException) -> StoreUnavailable:
        """The error, logged with its cause (scrubbed of secrets; the client sees neither)."""
        debug = f"redis {op} on {self.safe_url}: {self._scrub(f'{type(exc).__name__}: {exc}')}"
        log.error("store unavailable: %s", debug)
        metrics.store_error(op)
        return StoreUnavailable(debug=debug)

    # -- the Store protocol ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """``GET``: the value, or ``None`` when missing or expired."""
        return self._call("GET", lambda c: _opt_bytes(c.get(key)))

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """``SET key value EX ttl``."""
        check_ttl(ttl)
        self._write("SET", key, lambda c: c.set(key, value, ex=ttl))

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """``SET key value NX EX ttl``: ``True`` if written."""
        check_ttl(ttl)
        return bool(self._write("SET NX", key, lambda c: c.set(key, value, ex=ttl, nx=True)))

    def take(self, key: str) -> bytes | None:
        """``GETDEL``: a one-time value is returned to one caller only."""
        return _opt_bytes(self._write("GETDEL", key, lambda c: c.getdel(key)))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``MGET`` on one server; on a Cluster, ``GET`` each key in one pipeline (the keys
        may lie in different slots)."""
        if not keys:
            return []

        def run(c: Client) -> list[bytes | None]:
            if not isinstance(c, RedisCluster):
                return [_opt_bytes(v) for v in c.mget(keys)]
            pipe = c.pipeline(transaction=False)  # type: ignore[no-untyped-call]
            for k in keys:
                pipe.get(k)
            return [_opt_bytes(v) for v in pipe.execute()]
        return self._call("MGET", run)

    def set_many(self, writes: Sequence[Write]) -> None:
        """``SET key value EX ttl`` for each write, in one pipeline."""
        for _, _, ttl in writes:
            check_ttl(ttl)
        if not writes:
            return

        def queue_one(pipe: Any, write: Write) -> None:
            pipe.set(write[0], write[1], ex=write[2])

        def queue(pipe: Any) -> None:
            for write in writes:
                queue_one(pipe, write)

        def run(c: Client) -> None:
            if self.wait_replicas and isinstance(c, RedisCluster):
                for write in writes:  # WAIT is per connection: one key's primary each
                    self._replicated(c, write[0], functools.partial(queue_one, write=write))
            elif self.wait_replicas:
                self._replicated(c, writes[0][0], queue)
            else:
                pipe = c.pipeline(transaction=False)
                queue(pipe)
                pipe.execute()
        self._call("PIPELINE SET", run)

    def add_then_get(self, key: str, value: bytes, ttl: int,
                     read: str) -> tuple[bool, bytes | None]:
        """:meth:`add_then_get_many` of one key."""
        added, (raw,) = self.add_then_get_many(key, value, ttl, [read])
        return added, raw

    def add_then_get_many(self, key: str, value: bytes, ttl: int,
                          reads: Sequence[str]) -> tuple[bool, list[bytes | None]]:
        """``SET key value NX EX ttl`` then ``MGET reads``: one Lua script on one server (see
        ``ADD_GET_LUA``), a pipeline on a Cluster (the keys may lie in different slots)."""
        check_ttl(ttl)
        if not reads:
            return self.add(key, value, ttl), []

        def run(c: Client) -> tuple[bool, list[bytes | None]]:
            if not isinstance(c, RedisCluster):
                def script(p: Any) -> Any:
                    return p.eval(ADD_GET_LUA, 1 + len(reads), key, *reads, value, ttl)
                added, raw = (self._replicated(c, key, script) if self.wait_replicas
                              else script(c))
                return added == 1, [_opt_bytes(v) for v in raw]
            if self.wait_replicas:  # the claim acknowledged by replicas first, then the reads
                ok = self._replicated(c, key, lambda p: p.set(key, value, ex=ttl, nx=True))
                pipe = c.pipeline(transaction=False)  # type: ignore[no-untyped-call]
                for k in reads:
                    pipe.get(k)
                return bool(ok), [_opt_bytes(v) for v in pipe.execute()]
            pipe = c.pipeline(transaction=False)  # type: ignore[no-untyped-call]
            pipe.set(key, value, ex=ttl, nx=True)
            for k in reads:
                pipe.get(k)
            ok, *raw = pipe.execute()
            return bool(ok), [_opt_bytes(v) for v in raw]
        return self._call("SET NX GET", run)

    def swap(self, key: str, expected: bytes, writes: Sequence[Write]) -> bool:
        """Compare, ``SET … EX`` each write, then ``DEL``, in one Lua script (see ``SWAP_LUA``)."""
        check_swap(key, writes)
        keys = [key, *(w[0] for w in writes)]
        args: list[bytes | int] = [expected]
        for _, value, ttl in writes:
            args += [value, ttl]
        return int(self._write("EVAL swap", key,
                               lambda c: c.eval(SWAP_LUA, len(keys), *keys, *args))) == 1

    def delete(self, key: str) -> bool:
        """``DEL``: ``True`` if the key existed."""
        return int(self._write("DEL", key, lambda c: c.delete(key))) > 0

    def incr(self, key: str, ttl: int) -> int:
        """``INCR`` and, on a new counter, ``EXPIRE`` in one script (a fixed window)."""
        check_ttl(ttl)
        return int(self._write("INCR", key, lambda c: c.eval(INCR_LUA, 1, key, ttl)))

    def expire(self, key: str, ttl: int) -> bool:
        """``EXPIRE``: ``False`` if the key does not exist."""
        check_ttl(ttl)
        return bool(self._write("EXPIRE", key, lambda c: c.expire(key, ttl)))

    def ttl(self, key: str) -> int | None:
        """``TTL`` in seconds; ``None`` when missing (``-1``, no TTL, is never written here)."""
        left = self._call("TTL", lambda c: int(c.ttl(key)))
        return None if left == -2 else left

    def ping(self) -> None:
        """``PING``; :class:`StoreUnavailable` unless the server answers."""
        self._call("PING", lambda c: c.ping())

    def durability_warnings(self) -> list[str]:
        """Persistence and eviction settings read with ``INFO`` (``CONFIG`` is often disabled
        on managed Redis), on every primary of a Cluster.

        Safe is ``aof_enabled:1`` and ``maxmemory_policy:noeviction``: snapshots alone lose
        the writes since the last one, and every key here has a TTL, so ``volatile-*``
        policies may evict any of them, like ``allkeys-*``."""
        try:
            replies = self._call("INFO", _info_per_node)
        except StoreUnavailable:
            return ["redis: cannot read its persistence and eviction settings (INFO refused)"]
        warnings: list[str] = []
        for info in replies:
            if str(info.get("aof_enabled", "0")) != "1":
                warnings.append("redis persistence: appendonly is off, a restart or crash "
                                "loses replay markers, revocations and refresh tokens")
            policy = str(info.get("maxmemory_policy", "unknown"))
            if policy != "noeviction":
                warnings.append(f"redis maxmemory-policy `{policy}` may evict replay markers "
                                "and revocations: use noeviction")
        return sorted(set(warnings))

    def close(self) -> None:
        """Close the connection pool(s)."""
        with self._lock:
            client, self._client = self._client, None
        try:
            if client is not None:
                client.close()
            if self._on_close is not None:
                self._on_close()
        except (RedisError, RedisClusterException, OSError):
            pass


def _info_per_node(client: Client) -> list[dict[str, Any]]:
    """``INFO persistence`` and ``INFO memory`` of the server, or of every Cluster primary."""
    if isinstance(client, RedisCluster):
        nodes = client.get_primaries()  # type: ignore[no-untyped-call]
        per_node: list[dict[str, Any]] = []
        for node in nodes:
            info: dict[str, Any] = {}
            for section in ("persistence", "memory"):
                info.update(client.info(section, target_nodes=node))  # type: ignore[no-untyped-call]
            per_node.append(info)
        return per_node
    merged: dict[str, Any] = {**client.info("persistence"), **client.info("memory")}
    return [merged]


def _opt_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    raise TypeError(f"unexpected reply type `{type(value).__name__}`")
