"""The one conformance suite of the ``Store`` protocol (STYLE.md §2, DESIGN.md §Identifiers and
keys in the store), run unchanged against ``memory://``, a real redis-server, Sentinel and
Cluster; then the memory backend's clock rules, URL parsing, and a Redis that is down.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from idp.errors import ConfigError, StoreUnavailable
from idp.store import (
    CLUSTER_SLOTS,
    Store,
    get_json,
    hash_slot,
    key,
    new_id,
    open_store,
    set_json,
    take_json,
)
from idp.store.memory import MemoryStore
from idp.store.redis import RedisStore
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.servers import free_port

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis_url", id="redis", marks=pytest.mark.redis),
    pytest.param("redis_sentinel_url", id="sentinel", marks=pytest.mark.redis),
    pytest.param("redis_cluster_url", id="cluster", marks=pytest.mark.redis),
]
THREADS = 20


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store of each backend."""
    url = "memory://" if request.param == "memory" else request.getfixturevalue(request.param)
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


def _race(n: int, fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in ``n`` threads released at once; their results."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


# -- the protocol, every backend ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"session-data", id="ascii round trip"),
        pytest.param(b"", id="empty value is a value, not missing"),
        pytest.param(bytes(range(256)), id="binary values keep every byte"),
        pytest.param(b"\x00\xff" * 200_000, id="large binary value"),
        pytest.param("é✓".encode(), id="utf-8 bytes unchanged"),
    ],
)
def test_get_returns_what_set_wrote(store: Store, value: bytes) -> None:
    k = key("sess", new_id())
    store.set(k, value, 60)
    assert store.get(k) == value


def test_get_of_missing_key_is_none(store: Store) -> None:
    assert store.get(key("sess", new_id())) is None


def test_set_replaces_previous_value(store: Store) -> None:
    k = key("sess", new_id())
    store.set(k, b"one", 60)
    store.set(k, b"two", 60)
    assert store.get(k) == b"two"


@pytest.mark.parametrize("ttl", [pytest.param(0, id="zero"), pytest.param(-5, id="negative")])
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda s, k, t: s.set(k, b"v", t), id="set"),
        pytest.param(lambda s, k, t: s.add(k, b"v", t), id="add"),
        pytest.param(lambda s, k, t: s.incr(k, t), id="incr"),
        pytest.param(lambda s, k, t: s.expire(k, t), id="expire"),
        pytest.param(lambda s, k, t: s.set_many([(k, b"v", t)]), id="set_many"),
        pytest.param(lambda s, k, t: s.set_many([(key("sess", new_id()), b"v", 60),
                                                 (k, b"v", t)]),
                     id="set_many with one bad ttl writes none"),
        pytest.param(lambda s, k, t: s.add_then_get(key("replay", new_id()), b"v", t, k),
                     id="add_then_get"),
        pytest.param(lambda s, k, t: s.add_then_get_many(key("replay", new_id()), b"v", t,
                                                         [k]),
                     id="add_then_get_many"),
    ],
)
def test_every_write_requires_a_positive_ttl(
    store: Store, write: Callable[[Store, str, int], object], ttl: int
) -> None:
    k = key("sess", new_id())
    store.set(k, b"before", 60)
    with pytest.raises(ValueError):
        write(store, k, ttl)
    assert store.get(k) == b"before"


def test_ttl_honoured_keys_and_counters_vanish_after_their_ttl(store: Store) -> None:
    """Real time, kept short: one sleep covers set, add and the incr window."""
    plain, claimed, counter = (key(kind, new_id()) for kind in ("sess", "replay", "lock"))
    store.set(plain, b"v", 1)
    assert store.add(claimed, b"v", 1)
    assert store.incr(counter, 1) == 1
    assert store.incr(counter, 1) == 2
    time.sleep(1.3)
    assert store.get(plain) is None
    assert store.ttl(plain) is None
    assert store.take(claimed) is None
    assert store.add(claimed, b"again", 60), "add succeeds once the old claim expired"
    assert store.incr(counter, 60) == 1, "a new window starts after the old one expired"


def test_add_is_nx_second_add_fails_and_keeps_value(store: Store) -> None:
    k = key("replay", new_id())
    assert store.add(k, b"first", 60) is True
    assert store.add(k, b"second", 60) is False
    assert store.get(k) == b"first"


def test_add_after_delete_succeeds(store: Store) -> None:
    k = key("replay", new_id())
    assert store.add(k, b"first", 60)
    assert store.delete(k)
    assert store.add(k, b"second", 60)
    assert store.get(k) == b"second"


def test_add_under_concurrency_exactly_one_claims(store: Store) -> None:
    k = key("lock", new_id())
    results = _race(THREADS, lambda: store.add(k, b"mine", 60))
    assert results.count(True) == 1
    assert results.count(False) == THREADS - 1


def _spread_keys(n: int) -> list[str]:
    """``n`` keys, the first three in different thirds of the hash slots (on the test
    Cluster, on its three primaries)."""
    keys: list[str] = []
    thirds: set[int] = set()
    while len(keys) < n:
        k = key("sess", new_id())
        third = hash_slot(k) * 3 // CLUSTER_SLOTS
        if third not in thirds or len(thirds) == 3:
            thirds.add(third)
            keys.append(k)
    return keys


def test_get_many_reads_each_key_in_order_none_where_missing(store: Store) -> None:
    keys = _spread_keys(5)
    store.set(keys[0], b"zero", 60)
    store.set(keys[2], b"", 60)
    store.set(keys[4], b"four", 60)
    assert store.get_many(keys) == [b"zero", None, b"", None, b"four"]
    assert store.get_many([keys[4], keys[4], keys[0]]) == [b"four", b"four", b"zero"]
    assert store.get_many([]) == []


def test_set_many_writes_each_key_with_its_own_ttl(store: Store) -> None:
    keys = _spread_keys(3)
    store.set(keys[0], b"old", 60)
    store.set_many([(keys[0], b"a", 60), (keys[1], b"b", 120), (keys[2], b"c", 1)])
    assert store.get_many(keys) == [b"a", b"b", b"c"]
    assert 55 <= (store.ttl(keys[0]) or 0) <= 60
    assert 115 <= (store.ttl(keys[1]) or 0) <= 120
    time.sleep(1.3)
    assert store.get(keys[2]) is None
    store.set_many([])


def test_add_then_get_claims_once_and_reads_the_other_key_after(store: Store) -> None:
    marker, other = _spread_keys(2)
    assert store.add_then_get(marker, b"1", 60, other) == (True, None)
    store.set(other, b"epoch", 60)
    assert store.add_then_get(marker, b"2", 60, other) == (False, b"epoch")
    assert store.get(marker) == b"1"
    fresh = key("replay", new_id())
    assert store.add_then_get(fresh, b"self", 60, fresh) == (True, b"self"), \
        "the read comes after the claim"


def test_add_then_get_under_concurrency_exactly_one_claims(store: Store) -> None:
    marker, other = _spread_keys(2)
    store.set(other, b"epoch", 60)
    results = _race(THREADS, lambda: store.add_then_get(marker, b"mine", 60, other))
    assert [claimed for claimed, _ in results].count(True) == 1
    assert all(read == b"epoch" for _, read in results)


def test_add_then_get_many_claims_once_and_reads_every_key_after(store: Store) -> None:
    marker, *others = _spread_keys(4)
    assert store.add_then_get_many(marker, b"1", 60, others) == (True, [None, None, None])
    store.set(others[0], b"session", 60)
    store.set(others[2], b"revoked", 60)
    assert store.add_then_get_many(marker, b"2", 60, others) == (
        False, [b"session", None, b"revoked"])
    assert store.get(marker) == b"1"
    fresh = key("replay", new_id())
    assert store.add_then_get_many(fresh, b"self", 60, [others[0], fresh]) == (
        True, [b"session", b"self"]), "the reads come after the claim"
    lone = key("replay", new_id())
    assert store.add_then_get_many(lone, b"1", 60, []) == (True, [])
    assert store.add_then_get_many(lone, b"1", 60, []) == (False, [])


def test_add_then_get_many_under_concurrency_exactly_one_claims(store: Store) -> None:
    marker, *others = _spread_keys(3)
    store.set(others[1], b"session", 60)
    results = _race(THREADS, lambda: store.add_then_get_many(marker, b"mine", 60, others))
    assert [claimed for claimed, _ in results].count(True) == 1
    assert all(read == [None, b"session"] for _, read in results)


def test_take_returns_a_one_time_value_once(store: Store) -> None:
    k = key("code", new_id())
    store.set(k, b"authorization-code", 60)
    assert store.take(k) == b"authorization-code"
    assert store.take(k) is None
    assert store.get(k) is None


def test_take_of_missing_key_is_none(store: Store) -> None:
    assert store.take(key("code", new_id())) is None


@pytest.mark.parametrize("round_", range(3), ids=lambda r: f"round {r}")
def test_take_under_concurrency_exactly_one_gets_it(store: Store, round_: int) -> None:
    k = key("code", new_id())
    store.set(k, b"one-time", 60)
    results = _race(THREADS, lambda: store.take(k))
    assert [r for r in results if r is not None] == [b"one-time"]


def test_incr_counts_from_one(store: Store) -> None:
    k = key("throttle", new_id())
    assert [store.incr(k, 60) for _ in range(5)] == [1, 2, 3, 4, 5]


def test_incr_sets_ttl_only_on_creation_fixed_window(store: Store) -> None:
    k = key("throttle", new_id())
    store.incr(k, 100)
    store.incr(k, 5)
    store.incr(k, 1000)
    left = store.ttl(k)
    assert left is not None and 95 <= left <= 100


def test_incr_under_concurrency_loses_no_count(store: Store) -> None:
    k = key("throttle", new_id())
    _race(THREADS, lambda: [store.incr(k, 60) for _ in range(10)])
    assert store.incr(k, 60) == THREADS * 10 + 1


def test_incr_of_a_non_integer_value_is_a_value_error(store: Store) -> None:
    k = key("throttle", new_id())
    store.set(k, b"not a number", 60)
    with pytest.raises(ValueError):
        store.incr(k, 60)


def test_ttl_reports_seconds_left(store: Store) -> None:
    k = key("sess", new_id())
    store.set(k, b"v", 100)
    left = store.ttl(k)
    assert left is not None and 98 <= left <= 100


def test_ttl_of_missing_key_is_none(store: Store) -> None:
    assert store.ttl(key("sess", new_id())) is None


def test_expire_sets_a_new_ttl_on_an_existing_key(store: Store) -> None:
    k = key("sess", new_id())
    store.set(k, b"v", 10)
    assert store.expire(k, 500) is True
    left = store.ttl(k)
    assert left is not None and 498 <= left <= 500
    assert store.get(k) == b"v", "expire keeps the value"


def test_expire_can_shorten_a_ttl(store: Store) -> None:
    k = key("sess", new_id())
    store.set(k, b"v", 500)
    assert store.expire(k, 10)
    left = store.ttl(k)
    assert left is not None and 8 <= left <= 10


def test_expire_of_missing_key_is_false_and_creates_nothing(store: Store) -> None:
    k = key("sess", new_id())
    assert store.expire(k, 60) is False
    assert store.get(k) is None


def test_delete_reports_whether_the_key_existed(store: Store) -> None:
    k = key("sess", new_id())
    store.set(k, b"v", 60)
    assert store.delete(k) is True
    assert store.get(k) is None
    assert store.delete(k) is False


def test_keys_are_independent(store: Store) -> None:
    a, b = key("sess", new_id()), key("sess", new_id())
    store.set(a, b"a", 60)
    store.set(b, b"b", 60)
    store.take(a)
    assert store.get(b) == b"b"


def _family_keys(n: int) -> list[str]:
    """``n`` keys of one hash slot, like a refresh-token family's (``idp:rt:{fid}:…``)."""
    tag = new_id()
    return [f"idp:rt:{{{tag}}}:{new_id()}" for _ in range(n)]


def test_swap_spends_the_old_value_and_writes_the_new_ones(store: Store) -> None:
    old, used, new = _family_keys(3)
    store.set(old, b"old-token", 60)
    assert store.swap(old, b"old-token", [(used, b"family", 120), (new, b"new-token", 60)])
    assert store.get(old) is None
    assert store.get(used) == b"family" and store.get(new) == b"new-token"
    left = store.ttl(used)
    assert left is not None and 115 <= left <= 120


@pytest.mark.parametrize("present", [
    pytest.param(None, id="missing key changes nothing"),
    pytest.param(b"another-value", id="different value changes nothing"),
])
def test_swap_of_a_value_not_there_changes_nothing(store: Store, present: bytes | None) -> None:
    old, new = _family_keys(2)
    if present is not None:
        store.set(old, present, 60)
    assert store.swap(old, b"old-token", [(new, b"new-token", 60)]) is False
    assert store.get(old) == present
    assert store.get(new) is None


def test_swap_twice_only_the_first_spends(store: Store) -> None:
    old, a, b = _family_keys(3)
    store.set(old, b"v", 60)
    assert store.swap(old, b"v", [(a, b"a", 60)])
    assert store.swap(old, b"v", [(b, b"b", 60)]) is False
    assert store.get(b) is None


@pytest.mark.parametrize("round_", range(3), ids=lambda r: f"round {r}")
def test_swap_under_concurrency_exactly_one_spends(store: Store, round_: int) -> None:
    keys = _family_keys(THREADS + 1)
    store.set(keys[0], b"one-time", 60)
    it = iter(keys[1:])
    lock = threading.Lock()

    def attempt() -> tuple[bool, str]:
        with lock:
            mine = next(it)
        return store.swap(keys[0], b"one-time", [(mine, b"x", 60)]), mine

    results = _race(THREADS, attempt)
    winners = [k for ok, k in results if ok]
    assert len(winners) == 1
    assert [k for k in keys[1:] if store.get(k) is not None] == winners


@pytest.mark.parametrize("writes", [
    pytest.param(lambda k: [(f"idp:rt:{{other-{new_id()}}}:x", b"v", 60)],
                 id="keys in two hash slots"),
    pytest.param(lambda k: [(k, b"v", 60)], id="spent key among the writes"),
    pytest.param(lambda k: [(k + "x", b"v", 0)], id="write without a ttl"),
])
def test_swap_refuses_bad_writes_and_changes_nothing(
    store: Store, writes: Callable[[str], list[tuple[str, bytes, int]]]
) -> None:
    (old,) = _family_keys(1)
    store.set(old, b"v", 60)
    with pytest.raises(ValueError):
        store.swap(old, b"v", writes(old))
    assert store.get(old) == b"v"


@pytest.mark.parametrize("k", [
    "idp:rt:x", "idp:rt:{fam}:a", "idp:rt:{}:a", "idp:{a}{b}", "{user1000}.following",
    "idp:rt:{fam", "idp:rt:}{fam}", "é✓{ü}",
])
def test_hash_slot_is_redis_cluster_key_slot(k: str) -> None:
    from redis.crc import key_slot

    assert hash_slot(k) == key_slot(k.encode())


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"sub": "alice", "groups": ["admins", "engineering"]}, id="object"),
        pytest.param([1, 2.5, True, None], id="array of scalars"),
        pytest.param("naïve ✓ text", id="unicode string"),
        pytest.param({"nested": {"deep": {"n": 10**18}}}, id="nested with big int"),
        pytest.param(0, id="falsy zero is not missing"),
    ],
)
def test_json_helpers_round_trip(store: Store, value: object) -> None:
    k = key("sess", new_id())
    set_json(store, k, value, 60)
    assert get_json(store, k) == value
    assert take_json(store, k) == value
    assert take_json(store, k) is None
    assert get_json(store, k) is None


def test_ping_answers(store: Store) -> None:
    store.ping()


def test_durability_warnings_say_that_test_servers_keep_nothing(store: Store) -> None:
    """Every backend the suite runs on loses its data when stopped (test servers have no
    persistence): each says so, on every node of a Cluster."""
    warnings = store.durability_warnings()
    assert warnings and all(isinstance(w, str) for w in warnings)
    assert any("memory store" in w or "appendonly is off" in w for w in warnings)


def test_backend_satisfies_the_store_protocol(store: Store) -> None:
    assert isinstance(store, Store)


# -- identifiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "ident", "expected"),
    [
        pytest.param("sess", "abc", "idp:sess:abc", id="idp:<kind>:<id>"),
        pytest.param("sts", "ASIAEXAMPLE", "idp:sts:ASIAEXAMPLE", id="sts access key id"),
    ],
)
def test_key_is_prefixed_with_kind(kind: str, ident: str, expected: str) -> None:
    assert key(kind, ident) == expected


def test_new_id_has_at_least_128_bits_and_is_url_safe() -> None:
    ident = new_id()
    raw = base64.urlsafe_b64decode(ident + "=" * (-len(ident) % 4))
    assert len(raw) >= 16
    assert set(ident) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_new_id_is_unique_over_many() -> None:
    ids = {new_id() for _ in range(100_000)}
    assert len(ids) == 100_000


def test_new_id_refuses_fewer_than_128_bits() -> None:
    with pytest.raises(ValueError):
        new_id(15)


# -- the memory backend on a pinned clock ------------------------------------------------------


class PinnedClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> PinnedClock:
    return PinnedClock()


@pytest.fixture
def mem(clock: PinnedClock) -> MemoryStore:
    return MemoryStore(clock=clock)


def test_memory_key_lives_until_its_deadline_exactly(mem: MemoryStore, clock: PinnedClock) -> None:
    mem.set("k", b"v", 10)
    clock.now += 9.999
    assert mem.get("k") == b"v"
    assert mem.ttl("k") == 1, "ttl rounds up: a live key never reports 0"
    clock.now += 0.001
    assert mem.get("k") is None


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        pytest.param(lambda s: s.get("k"), None, id="get after expiry"),
        pytest.param(lambda s: s.take("k"), None, id="take after expiry"),
        pytest.param(lambda s: s.delete("k"), False, id="delete after expiry"),
        pytest.param(lambda s: s.expire("k", 10), False, id="expire after expiry"),
        pytest.param(lambda s: s.ttl("k"), None, id="ttl after expiry"),
        pytest.param(lambda s: s.add("k", b"new", 10), True, id="add after expiry"),
        pytest.param(lambda s: s.incr("k", 10), 1, id="incr after expiry starts at 1"),
    ],
)
def test_memory_expired_key_is_gone_for_every_operation(
    mem: MemoryStore, clock: PinnedClock, op: Callable[[MemoryStore], object], expected: object
) -> None:
    mem.set("k", b"7", 5)
    clock.now += 5
    assert op(mem) == expected


def test_memory_incr_window_is_fixed_from_creation(mem: MemoryStore, clock: PinnedClock) -> None:
    assert mem.incr("n", 60) == 1
    clock.now += 59
    assert mem.incr("n", 60) == 2, "a later incr does not extend the window"
    clock.now += 1
    assert mem.incr("n", 60) == 1


def test_memory_expire_moves_the_deadline(mem: MemoryStore, clock: PinnedClock) -> None:
    mem.set("k", b"v", 10)
    clock.now += 8
    assert mem.expire("k", 10)
    clock.now += 9
    assert mem.get("k") == b"v"
    clock.now += 1
    assert mem.get("k") is None


def test_memory_sweep_drops_expired_keys_nobody_reads(clock: PinnedClock) -> None:
    mem = MemoryStore(clock=clock, sweep_batch=100)
    for i in range(5000):
        mem.set(f"old:{i}", b"v", 1)
    clock.now += 2
    for i in range(10):
        mem.set(f"new:{i}", b"v", 60)
    assert len(mem) <= 5010 - 10 * 100 + 10, "each write sweeps a bounded batch"
    assert len(mem) > 10, "one write never pays for the whole table"
    mem.sweep()
    assert len(mem) == 10


def test_memory_sweep_is_bounded_per_operation(clock: PinnedClock) -> None:
    mem = MemoryStore(clock=clock, sweep_batch=7)
    for i in range(100):
        mem.set(f"old:{i}", b"v", 1)
    clock.now += 2
    mem.get("anything")
    assert len(mem) == 93


def test_memory_refreshing_one_key_does_not_grow_memory(mem: MemoryStore) -> None:
    mem.set("sess", b"v", 3600)
    for _ in range(50_000):
        mem.expire("sess", 3600)
    assert len(mem._deadlines) < 2_100, "stale deadlines are compacted"
    assert mem.get("sess") == b"v"


def test_memory_ping_never_fails() -> None:
    mem = MemoryStore()
    mem.close()
    mem.ping()


def test_memory_is_the_embedded_default() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


# -- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://127.0.0.1/", id="unsupported scheme"),
        pytest.param("127.0.0.1:6379", id="no scheme"),
        pytest.param("", id="empty url"),
        pytest.param("unix+cluster:///tmp/r.sock", id="unix cannot be a cluster"),
        pytest.param("redis://127.0.0.1:port/0", id="port not a number"),
        pytest.param("redis://127.0.0.1:70000/0", id="port out of range"),
        pytest.param("redis://127.0.0.1:6379/zero", id="database not a number"),
        pytest.param("redis://127.0.0.1:6379/0?db=x", id="database param not a number"),
        pytest.param("redis://127.0.0.1:6379/0?socket_timeout=soon", id="timeout not a number"),
        pytest.param("redis://127.0.0.1:6379/0?socket_timeout=0", id="timeout zero"),
        pytest.param("redis://127.0.0.1:6379/0?socket_connect_timeout=-1",
                     id="connect timeout negative"),
        pytest.param("redis://127.0.0.1:6379/0?colour=blue", id="unknown parameter"),
        pytest.param("redis://a:6379,b:6379/0", id="several hosts without sentinel or cluster"),
        pytest.param("unix://", id="unix without a socket path"),
        pytest.param("redis+sentinel://127.0.0.1:26379", id="sentinel without service name"),
        pytest.param("redis+sentinel://127.0.0.1:26379/mymaster/x", id="sentinel bad database"),
        pytest.param("redis+sentinel://127.0.0.1:99999/mymaster", id="sentinel port out of range"),
        pytest.param("redis+sentinel://127.0.0.1:x/mymaster", id="sentinel port not a number"),
        pytest.param("redis+sentinel://:26379/mymaster", id="sentinel without host"),
        pytest.param("redis+cluster://127.0.0.1:7000/3", id="cluster database not 0"),
        pytest.param("redis+cluster://127.0.0.1:7000/?db=2", id="cluster db param not 0"),
        pytest.param("redis+cluster://127.0.0.1:7000,/", id="cluster empty node"),
        pytest.param("redis+cluster://127.0.0.1:7000?sentinel_password=x",
                     id="sentinel parameter on a cluster"),
    ],
)
def test_open_store_rejects_bad_url_with_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    assert info.value.problems and all(p.startswith("store.url") for p in info.value.problems)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://:hunter2-Secret@127.0.0.1:port/0", id="bad port"),
        pytest.param("redis://u:hunter2-Secret@127.0.0.1:6379/0?colour=blue", id="unknown param"),
        pytest.param("redis+sentinel://:hunter2-Secret@h:1", id="sentinel no service"),
        pytest.param("redis+cluster://:hunter2-Secret@h:1/4", id="cluster database"),
        pytest.param("redis://127.0.0.1/0?password=hunter2-Secret&db=x", id="password param"),
    ],
)
def test_config_error_never_shows_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    shown = f"{info.value} {info.value.description} {info.value.debug} {info.value.problems}"
    assert "hunter2-Secret" not in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://127.0.0.1:6379/2", {"db": 2, "socket_timeout": 2.0,
                                                  "socket_connect_timeout": 2.0},
                     id="standalone defaults to 2s timeouts"),
        pytest.param("redis://h/0?socket_timeout=0.5", {"socket_timeout": 0.5,
                                                         "socket_connect_timeout": 0.5},
                     id="socket_timeout bounds connect and read"),
        pytest.param("redis://h/0?socket_timeout=3&socket_connect_timeout=1",
                     {"socket_timeout": 3.0, "socket_connect_timeout": 1.0},
                     id="connect timeout separately"),
        pytest.param("rediss://h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/tmp/ca.pem",
                     {"ssl_cert_reqs": "none", "ssl_ca_certs": "/tmp/ca.pem"},
                     id="rediss passes tls params through"),
        pytest.param("unix:///tmp/redis.sock?db=3", {"path": "/tmp/redis.sock", "db": 3},
                     id="unix socket"),
        pytest.param("redis://user:p%40ss@h/0", {"username": "user", "password": "p@ss"},
                     id="credentials are url-decoded"),
        pytest.param("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.2:26380/mymaster/1",
                     {"db": 1, "password": "pw", "socket_timeout": 2.0},
                     id="sentinel hosts service and database"),
        pytest.param("rediss+sentinel://127.0.0.1:26379/mymaster?ssl_cert_reqs=none",
                     {"ssl_cert_reqs": "none"}, id="sentinel over tls"),
    ],
)
def test_open_store_parses_good_urls_without_io(url: str, expected: dict[str, object]) -> None:
    s = open_store(url)
    assert isinstance(s, RedisStore)
    client = s._get_client()
    assert isinstance(client, redis.Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert {k: kwargs.get(k) for k in expected} == expected
    s.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://h/0", 0.25, id="config socket_timeout when the url has none"),
        pytest.param("redis://h/0?socket_timeout=3", 3.0, id="the url's own timeout wins"),
    ],
)
def test_open_store_takes_the_config_socket_timeout(url: str, expected: float) -> None:
    s = open_store(url, socket_timeout=0.25)
    client = s._get_client() if isinstance(s, RedisStore) else None
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_kwargs["socket_timeout"] == expected
    s.close()


def test_sentinel_url_lists_every_sentinel() -> None:
    s = open_store("redis+sentinel://127.0.0.1:26379,[::1]:26380,h3/mymaster")
    assert isinstance(s, RedisStore) and s._on_close is not None
    client = s._get_client()
    assert isinstance(client, redis.Redis)
    manager: Any = getattr(client.connection_pool, "sentinel_manager", None)
    kwargs = [c.connection_pool.connection_kwargs for c in manager.sentinels]
    hosts = [(k["host"], k["port"]) for k in kwargs]
    assert hosts == [("127.0.0.1", 26379), ("::1", 26380), ("h3", 26379)]


def test_cluster_url_opens_lazily() -> None:
    """RedisCluster reads the slot map when built: opening must not touch the network."""
    s = open_store(f"rediss+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    assert isinstance(s, RedisStore)
    s.close()


# -- a Redis that is down ----------------------------------------------------------------------


@pytest.fixture
def blackhole_url() -> Iterator[str]:
    """A port that accepts TCP connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0?socket_timeout=0.5"


DOWN_TARGETS = {
    "refused": lambda: f"redis://127.0.0.1:{free_port()}/0",
    "sentinel refused": lambda: f"redis+sentinel://127.0.0.1:{free_port()}/mymaster",
    "cluster refused": lambda: f"redis+cluster://127.0.0.1:{free_port()}",
}
OPS = {
    "get": lambda s: s.get("idp:sess:x"),
    "set": lambda s: s.set("idp:sess:x", b"v", 60),
    "add": lambda s: s.add("idp:sess:x", b"v", 60),
    "take": lambda s: s.take("idp:sess:x"),
    "incr": lambda s: s.incr("idp:sess:n", 60),
    "expire": lambda s: s.expire("idp:sess:x", 60),
    "ttl": lambda s: s.ttl("idp:sess:x"),
    "delete": lambda s: s.delete("idp:sess:x"),
    "swap": lambda s: s.swap("idp:rt:{f}:x", b"v", [("idp:rt:{f}:y", b"w", 60)]),
    "ping": lambda s: s.ping(),
}


def _assert_unavailable(s: Store, op: Callable[[Store], object], limit: float) -> StoreUnavailable:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        op(s)
    assert time.monotonic() - started < limit
    assert not isinstance(info.value, redis.RedisError)
    assert info.value.status == 503 and info.value.debug
    return info.value


@pytest.mark.parametrize("op", list(OPS.values()), ids=list(OPS))
@pytest.mark.parametrize("target", list(DOWN_TARGETS.values()), ids=list(DOWN_TARGETS))
def test_redis_down_is_store_unavailable(
    target: Callable[[], str], op: Callable[[Store], object]
) -> None:
    s = open_store(target())
    _assert_unavailable(s, op, limit=2.0)
    s.close()


@pytest.mark.parametrize("op", list(OPS.values()), ids=list(OPS))
def test_redis_that_never_answers_times_out_as_store_unavailable(
    blackhole_url: str, op: Callable[[Store], object]
) -> None:
    s = open_store(blackhole_url)
    error = _assert_unavailable(s, op, limit=1.5)
    assert "Timeout" in error.debug
    s.close()


@pytest.mark.redis
def test_redis_going_down_mid_use_is_store_unavailable(redis_stoppable: Any) -> None:
    s = open_store(redis_stoppable.url)
    s.set("idp:sess:x", b"v", 60)
    assert s.get("idp:sess:x") == b"v"
    redis_stoppable.stop()
    for op in OPS.values():
        _assert_unavailable(s, op, limit=2.0)
    s.close()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://:{pw}@127.0.0.1:{port}/0", id="standalone password"),
        pytest.param("redis://admin:{pw}@127.0.0.1:{port}/0", id="standalone user and password"),
        pytest.param("redis://127.0.0.1:{port}/0?password={pw}", id="password query param"),
        pytest.param("redis+sentinel://:{pw}@127.0.0.1:{port}/mymaster", id="sentinel"),
        pytest.param("redis+sentinel://127.0.0.1:{port}/mymaster?sentinel_password={pw}",
                     id="sentinel password param"),
        pytest.param("redis+cluster://:{pw}@127.0.0.1:{port}", id="cluster"),
    ],
)
@pytest.mark.parametrize(
    "password",
    [pytest.param("hunter2-Secret", id="plain"), pytest.param("p%40ss%3Aw%2Frd", id="encoded")],
)
def test_store_unavailable_never_shows_the_password(url: str, password: str) -> None:
    s = open_store(url.format(pw=password, port=free_port()))
    error = _assert_unavailable(s, OPS["get"], limit=2.0)
    shown = f"{error} {error.description} {error.debug} {error!r} {s!r}"
    for secret in {password, "hunter2-Secret", "p@ss:w/rd"}:
        assert secret not in shown
    assert "***" in error.debug
    s.close()


@pytest.mark.redis
def test_wrong_password_on_a_live_server_is_unavailable_without_the_password(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "auth", extra=["--requirepass", "right-Secret"]).start()
    try:
        good = open_store(server.url.replace("redis://", "redis://:right-Secret@"))
        good.set("idp:sess:x", b"v", 60)
        assert good.get("idp:sess:x") == b"v"
        good.close()
        s = open_store(server.url.replace("redis://", "redis://:hunter2-Secret@"))
        error = _assert_unavailable(s, OPS["get"], limit=2.0)
        assert "hunter2-Secret" not in f"{error} {error.debug} {error!r}"
        s.close()
    finally:
        server.stop()
