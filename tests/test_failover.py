"""Redis failover: the service recovers by itself, and with ``store.wait_replicas`` nothing it
acknowledged is lost (sessions, refresh tokens, STS credentials, replay markers, revocations).

Real processes (tests/fixtures/redis_ha.py): a primary, two replicas and three sentinels; a
Cluster of three primaries with a replica each.  The primary is killed with SIGKILL under the
load of tests/fixtures/failover_load.py; each test stays under a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from idp.config import StoreConfig
from idp.demo import demo_config
from idp.errors import ConfigError, StoreUnavailable
from idp.store import open_store
from idp.store.redis import RedisStore
from tests.fixtures.failover_load import KINDS, Load, Target
from tests.fixtures.live import live_idp
from tests.fixtures.redis_ha import ClusterHA, SentinelHA, start_cluster_ha, start_sentinel_ha
from tests.fixtures.servers import free_port
from tests.helpers import login
from tests.sts.webapp import USER, aws_code, sts_call, web_app

ACCOUNT = "111122223333"


@pytest.fixture
def sentinel_ha(tmp_path: Path) -> Iterator[SentinelHA]:
    ha = start_sentinel_ha(tmp_path / "sentinel")
    try:
        yield ha
    finally:
        ha.stop()


@pytest.fixture
def cluster_ha(tmp_path: Path) -> Iterator[ClusterHA]:
    cluster = start_cluster_ha(tmp_path / "cluster")
    try:
        yield cluster
    finally:
        cluster.stop()


# -- the setting ----------------------------------------------------------------------------


def test_wait_replicas_is_refused_with_the_memory_store() -> None:
    with pytest.raises(ValidationError, match="memory:// has no replicas"):
        StoreConfig(url="memory://", wait_replicas=1)
    with pytest.raises(ConfigError, match="memory:// has no replicas"):
        open_store("memory://", wait_replicas=1)


def test_wait_timeout_must_be_shorter_than_the_socket_timeout() -> None:
    with pytest.raises(ValidationError, match="must be shorter than socket_timeout"):
        StoreConfig(url="redis://h/0", wait_replicas=1, wait_timeout_ms=2000, socket_timeout=2)
    assert StoreConfig(url="redis://h/0", wait_replicas=1, wait_timeout_ms=1999).wait_replicas == 1


WRITES: list[tuple[str, Callable[[RedisStore], object]]] = [
    ("set", lambda s: s.set("idp:sess:a", b"v", 60)),
    ("add", lambda s: s.add("idp:replay:a", b"1", 60)),
    ("take", lambda s: s.take("idp:code:a")),
    ("swap", lambda s: s.swap("idp:rt:{f}:a", b"old", [("idp:rt:{f}:b", b"new", 60)])),
    ("delete", lambda s: s.delete("idp:sess:a")),
    ("incr", lambda s: s.incr("idp:lock:a", 60)),
    ("expire", lambda s: s.expire("idp:sess:a", 60)),
    ("set_many", lambda s: s.set_many([("idp:sess:a", b"v", 60), ("idp:sess:b", b"w", 60)])),
    ("add_then_get", lambda s: s.add_then_get("idp:replay:b", b"1", 60, "idp:epoch")),
    ("add_then_get_many", lambda s: s.add_then_get_many("idp:replay:c", b"1", 60,
                                                        ["idp:epoch", "idp:sess:x"])),
]


@pytest.mark.parametrize("write", [w for _, w in WRITES], ids=[n for n, _ in WRITES])
def test_a_write_no_replica_acknowledged_is_not_acknowledged(
        redis_url: str, write: Callable[[RedisStore], object]) -> None:
    """A standalone server has no replica: with ``wait_replicas=1`` every write is a 503."""
    store = RedisStore.from_url(redis_url, wait_replicas=1, wait_timeout_ms=20)
    try:
        store.ping()  # reads are not waited for
        assert store.get("idp:sess:a") is None
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            write(store)
        assert time.monotonic() - started < 1.5
    finally:
        store.close()


def test_a_write_no_replica_acknowledged_is_a_503_on_both_sts_paths_and_the_login_page(
        redis_url: str, tmp_path: Path, demo_keys_dir: Path) -> None:
    """GetSessionToken (its session record) through the fast path and the Flask route, and a
    sign-in (its IdP session): AWS's ``503 ServiceUnavailable`` and the 503 page, both with
    ``Retry-After``, the two STS paths alike."""
    web = web_app(tmp_path, demo_keys_dir, store={
        "url": redis_url, "wait_replicas": 1, "wait_timeout_ms": 20, "socket_timeout": 1})
    try:
        answers = []
        for _, client in web.both():
            r = sts_call(client, {"Action": "GetSessionToken"}, USER)
            assert r.status_code == 503, r.get_data(as_text=True)
            assert aws_code(r) == "ServiceUnavailable"
            assert r.headers["Retry-After"] == "5"
            answers.append(r.get_data(as_text=True).split("<RequestId>")[0])
        assert answers[0] == answers[1]
        page = login(web.app.test_client(), "alice", "alice-password")
        assert page.status_code == 503
        assert page.headers["Retry-After"]
    finally:
        web.close()


@pytest.mark.parametrize("wait_replicas", [0, 1],
                         ids=["without-wait-an-acknowledged-write-is-lost",
                              "with-wait-a-write-no-replica-has-is-not-acknowledged"])
def test_a_failover_to_a_lagging_replica(sentinel_ha: SentinelHA, wait_replicas: int) -> None:
    """The replicas are frozen (SIGSTOP) and cut off while a replay marker is written, the
    primary is killed, they resume and one is promoted without the marker: acknowledged
    without ``WAIT`` and lost; with ``wait_replicas=1`` refused (503), never acknowledged."""
    store = RedisStore.from_url(sentinel_ha.url, wait_replicas=wait_replicas,
                                wait_timeout_ms=50)
    try:
        store.set("idp:replay:before", b"1", 600)
        replicas = [s for s in sentinel_ha.servers if s.port != sentinel_ha.primary_port()]
        time.sleep(0.2)  # the replicas have `before`
        for r in replicas:
            r.pause()
        primary = next(s for s in sentinel_ha.servers if s.port == sentinel_ha.primary_port())
        client = primary.client()
        client.client_kill_filter(_type="replica")  # what was sent before is in their buffers
        client.close()
        try:
            acknowledged = True
            try:
                store.add("idp:replay:marker", b"1", 600)
            except StoreUnavailable:
                acknowledged = False
            old = sentinel_ha.kill_primary()
        finally:
            for r in replicas:
                r.resume()
        sentinel_ha.wait_failover(old)
        deadline = time.monotonic() + 10
        while True:
            try:
                survived = store.get("idp:replay:marker") is not None
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "no recovery after the failover"
                time.sleep(0.1)
        assert store.get("idp:replay:before") == b"1"
        if wait_replicas:
            assert not acknowledged, "acknowledged a write no replica had"
            assert not survived
        else:
            assert acknowledged and not survived, "expected the hazard WAIT exists for"
    finally:
        store.close()


# -- under load, through the service --------------------------------------------------------


def _target(base: str) -> Target:
    return Target(base=base, users=(("bob", "bob-password"), ("alice", "alice-password")),
                  client_id="demo-web", client_secret="demo-web-secret",
                  redirect_uri="http://127.0.0.1:8400/callback",
                  role_arn=f"arn:aws:iam::{ACCOUNT}:role/Developer",
                  provider_arn=f"arn:aws:iam::{ACCOUNT}:saml-provider/demo-idp")


def _failover_under_load(tmp_path: Path, url: str, kill: Callable[[], None],
                         settle: Callable[[], object]) -> None:
    port = free_port()
    config = demo_config(port, keys_dir=tmp_path / "keys", metadata_dirs=[tmp_path / "md"],
                         audit="none")
    config = config.model_copy(update={"store": StoreConfig(
        url=url, wait_replicas=1, wait_timeout_ms=500)})
    with live_idp(config, demo=True, port=port) as idp:
        load = Load(_target(idp.url))
        stop = False
        threads = load.run(2, lambda: stop)
        time.sleep(3)
        killed_at = time.monotonic()
        kill()
        deadline = killed_at + 30
        while True:  # recovered: a full round of successes after the last error
            time.sleep(0.5)
            outage = load.outage(killed_at)
            if outage["errors"] and outage["ok_after_last_error"] >= 12:
                break
            assert time.monotonic() < deadline, f"no recovery: {outage} {load.errors[-3:]}"
        stop = True
        for t in threads:
            t.join(15)
        settle()  # every check below writes too (a replay claim, a rotation): WAIT needs replicas
        result = load.verify()
    assert outage["errors"] > 0, "the kill did not reach the service"
    for kind in KINDS:
        acked, lost = result[kind]
        assert acked > 0, f"no {kind} was acknowledged"
        assert lost == 0, f"{lost} of {acked} acknowledged {kind} lost: {result}"


def test_sentinel_failover_under_load_recovers_and_loses_nothing_acknowledged(
        tmp_path: Path, sentinel_ha: SentinelHA) -> None:
    def kill() -> None:
        sentinel_ha.kill_primary()

    _failover_under_load(tmp_path, sentinel_ha.url, kill, sentinel_ha.wait_settled)


def test_cluster_failover_under_load_recovers_and_loses_nothing_acknowledged(
        tmp_path: Path, cluster_ha: ClusterHA) -> None:
    """The primary of ``idp:epoch`` is killed; its replica takes over, and the killed node
    is restarted (as a supervisor would) to be the shard's replica again, for WAIT 1."""
    def kill() -> None:
        cluster_ha.kill_primary("idp:epoch")
        cluster_ha.wait_failover()
        cluster_ha.restart_killed()

    _failover_under_load(tmp_path, cluster_ha.url, kill, cluster_ha.wait_failover)
