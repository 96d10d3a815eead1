"""No replay is accepted after the store forgets its replay markers: a redis-server restarted
without persistence (really stopped and started again on the same port), or the memory store
in a new process.  The store's epoch (``idp:epoch``, :mod:`idp.store.epoch`) tells that the
markers are gone; what was issued before it is refused with ``ExpiredTokenException``, the
STS's answer for "get a new assertion" (STS API Reference, AssumeRoleWithSAML, Errors)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from idp.app import Components
from idp.keys import KeyRing, init_keys
from idp.store import Store, open_store
from idp.store.epoch import EPOCH_KEY, StoreEpoch
from idp.store.memory import MemoryStore
from tests.fixtures.redis_server import RedisServer
from tests.helpers import config, make_app
from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, make_core
from tests.sts.util import code

NS = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}


def _assertion(keys: KeyRing) -> dict[str, str]:
    saml = A.encode(A.signed_response(A.Spec(ISSUER), keys.active("RS256")))
    return {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": A.role("Developer"),
            "PrincipalArn": A.PROVIDER, "SAMLAssertion": saml}


def _sts(comps: Components, client: object, form: dict[str, str]) -> tuple[int, str]:
    r = client.post("/sts", data=form)  # type: ignore[attr-defined]
    if r.status_code == 200:
        return 200, "ok"
    root = etree.fromstring(r.get_data())
    return r.status_code, str(root.findtext("s:Error/s:Code", namespaces=NS))


@pytest.fixture(params=[
    pytest.param([], id="without persistence"),
    pytest.param(["--appendonly", "yes", "--appendfsync", "always"], id="with AOF"),
])
def redis_restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", extra=list(request.param)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.redis
def test_used_assertion_is_refused_after_redis_restarts_and_a_fresh_one_is_accepted(
    tmp_path: Path, demo_keys_dir: Path, redis_restartable: RedisServer,
) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, store={
        "url": redis_restartable.url, "socket_timeout": 1.0}), demo=True)
    client = app.test_client()
    used = _assertion(comps.keys)
    assert _sts(comps, client, used) == (200, "ok")
    assert _sts(comps, client, used) == (400, "InvalidIdentityToken"), "replay before restart"
    time.sleep(1.0)  # the epoch has whole seconds, like IssueInstant: lost a second later
    redis_restartable.restart()
    status, error = _sts(comps, client, used)
    assert status == 400 and error in {"ExpiredTokenException", "InvalidIdentityToken"}, \
        "a replay after the restart is refused"
    time.sleep(1.0)  # IssueInstant has whole seconds: the next one is after the new epoch
    assert _sts(comps, client, _assertion(comps.keys)) == (200, "ok"), "a fresh assertion works"
    comps.close()


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    d: Path = tmp_path_factory.mktemp("epoch-keys")
    init_keys(d, "127.0.0.1")
    return KeyRing.load(d)


def test_used_assertion_is_refused_by_a_new_process_on_the_memory_store(
        keyring: KeyRing) -> None:
    """The memory store loses everything with its process: the next process starts an epoch
    and refuses what was issued before it."""
    first = make_core(keyring)
    spec = A.Spec(ISSUER, now=dt.datetime.fromtimestamp(first.clock.t, dt.UTC))
    params = {"Action": "AssumeRoleWithSAML", "RoleArn": A.role("Developer"),
              "PrincipalArn": A.PROVIDER,
              "SAMLAssertion": A.encode(A.signed_response(spec, keyring.active("RS256")))}
    assert first.call(params).status == 200
    restarted = make_core(keyring)
    restarted.clock.t = first.clock.t + 5
    StoreEpoch(restarted.store, restarted.clock).start()  # what build_components does
    assert code(restarted.call(params)) == "ExpiredTokenException"


# -- the epoch marker ----------------------------------------------------------------------------


@pytest.fixture(params=[pytest.param("memory", id="memory"),
                        pytest.param("redis_url", id="redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = "memory://" if request.param == "memory" else request.getfixturevalue(request.param)
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


def test_epoch_is_started_once_by_whichever_process_comes_first(store: Store) -> None:
    """Several processes sharing the store agree on one epoch (``SET NX``)."""
    clocks = [lambda i=i: 1_800_000_000.0 + i for i in range(10)]
    starts: list[float] = []
    barrier = threading.Barrier(10)

    def run(i: int) -> None:
        barrier.wait()
        starts.append(StoreEpoch(store, clocks[i]).start())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(starts) == 10 and len(set(starts)) == 1
    left = store.ttl(EPOCH_KEY)
    assert left is not None and left > 300 * 86400, "the marker has a TTL, a long one"


def test_epoch_lost_with_the_data_starts_again_later() -> None:
    store, now = MemoryStore(), [1_800_000_000.0]
    epoch = StoreEpoch(store, lambda: now[0])
    assert epoch.start() == now[0]
    assert not epoch.issued_before(now[0]) and epoch.issued_before(now[0] - 1)
    store.delete(EPOCH_KEY)  # the data is lost
    now[0] += 100
    assert epoch.start() == now[0]
    assert epoch.issued_before(now[0] - 1)


def test_epoch_marker_that_is_not_a_time_is_replaced() -> None:
    store = MemoryStore()
    store.set(EPOCH_KEY, b"garbage", 60)
    epoch = StoreEpoch(store, lambda: 1_800_000_000.0)
    assert epoch.start() == 1_800_000_000.0
    assert store.get(EPOCH_KEY) == b"1800000000.0"
