"""Nothing a client was given is lost when Redis misbehaves: a real redis-server killed in the
middle of a token exchange, stopped (SIGSTOP), or out of memory (``maxmemory`` with
``noeviction``).  A refresh token, an authorization code or a device code whose redemption
could not be written stays redeemable once Redis is back (RFC 6749 §6, RFC 9700 §4.14.2: the
old token is spent only together with writing its replacement)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from idp.app import Components
from idp.oidc import Grantee, OAuthRequest
from idp.oidc.authorize import Redirect, authorize
from idp.oidc.device import answer_device
from idp.oidc.grants import s256
from idp.oidc.tokens import Grant, issue
from idp.store import Store, Write, open_store
from tests.fixtures.redis_server import RedisServer
from tests.helpers import config, make_app

pytestmark = pytest.mark.redis

# the demo directory's alice (the token endpoint re-reads the person at every grant)
ALICE = Grantee("alice", "5d3c8a4e-7f0b-4c1e-9a52-0d6f1b2e3a41", ["admins", "engineering"], {},
                1_700_000_000, ["pwd"], "sid-1")
CLI = "demo-cli"  # the demo's public client: refresh tokens, PKCE, device flow
CALLBACK = "http://127.0.0.1:7/callback"
VERIFIER = "v" * 43


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of its own that writes every command to its AOF before answering, so a
    kill loses nothing acknowledged and ``restart()`` brings back what it held."""
    server = RedisServer(tmp_path / "redis-aof",
                         extra=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        yield server
    finally:
        server.resume()
        server.stop()


class FaultAfterRead:
    """A store that runs ``fault`` once, right after it reads a one-time value (the moment the
    old code had already taken it and the new one was not written yet)."""

    def __init__(self, inner: Store, kinds: tuple[str, ...]) -> None:
        self.inner = inner
        self.kinds = kinds
        self.fault: Callable[[], None] | None = None

    def _after(self, k: str) -> None:
        if self.fault is not None and any(f":{kind}:" in k for kind in self.kinds):
            fault, self.fault = self.fault, None
            fault()

    def get(self, key: str) -> bytes | None:
        value = self.inner.get(key)
        self._after(key)
        return value

    def take(self, key: str) -> bytes | None:
        value = self.inner.take(key)
        self._after(key)
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values = self.inner.get_many(keys)
        for k in keys:
            self._after(k)
        return values

    def set_many(self, writes: Sequence[Write]) -> None:
        self.inner.set_many(writes)

    def add_then_get(self, key: str, value: bytes, ttl: int,
                     read: str) -> tuple[bool, bytes | None]:
        return self.inner.add_then_get(key, value, ttl, read)

    def add_then_get_many(self, key: str, value: bytes, ttl: int,
                          reads: Sequence[str]) -> tuple[bool, list[bytes | None]]:
        added, values = self.inner.add_then_get_many(key, value, ttl, reads)
        for k in reads:
            self._after(k)
        return added, values

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self.inner.set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return self.inner.add(key, value, ttl)

    def swap(self, key: str, expected: bytes, writes: Sequence[Write]) -> bool:
        return self.inner.swap(key, expected, writes)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def incr(self, key: str, ttl: int) -> int:
        return self.inner.incr(key, ttl)

    def expire(self, key: str, ttl: int) -> bool:
        return self.inner.expire(key, ttl)

    def ttl(self, key: str) -> int | None:
        return self.inner.ttl(key)

    def ping(self) -> None:
        self.inner.ping()

    def durability_warnings(self) -> list[str]:
        return self.inner.durability_warnings()

    def close(self) -> None:
        self.inner.close()


def _app(tmp_path: Path, keys: Path, server: RedisServer
         ) -> tuple[FlaskClient, Components, FaultAfterRead]:
    url = server.url
    store = FaultAfterRead(open_store(url, socket_timeout=1.0), ("rt", "code", "device"))
    app, comps, _ = make_app(config(tmp_path, keys, store={"url": url, "socket_timeout": 1.0}),
                             demo=True, store=store)
    return app.test_client(), comps, store


# -- the three one-time values a client redeems for tokens ------------------------------------


def _refresh(client: FlaskClient, comps: Components) -> dict[str, str]:
    core = comps.extras["oidc"].core
    cli = core.clients.get(CLI)
    body = issue(core, Grant(cli, ["openid"], ALICE, None, core.new_id(),
                             core.now() + 3600, True))
    return {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}


def _code(client: FlaskClient, comps: Components) -> dict[str, str]:
    core = comps.extras["oidc"].core
    core.state.remember_consent(CLI, ALICE.subject, {"openid"}, 600)
    result = authorize(core, OAuthRequest({
        "response_type": "code", "client_id": CLI, "redirect_uri": CALLBACK,
        "scope": "openid", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}),
        ALICE)
    assert isinstance(result, Redirect)
    code = parse_qs(urlsplit(result.url).query)["code"][0]
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER}


def _device(client: FlaskClient, comps: Components) -> dict[str, str]:
    core = comps.extras["oidc"].core
    r = client.post("/oauth2/device_authorization", data={"client_id": CLI, "scope": "openid"})
    assert r.status_code == 200, r.json
    answer_device(core, OAuthRequest({}), r.json["user_code"], ALICE, True)
    return {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": r.json["device_code"]}


REDEEMED = [
    pytest.param(_refresh, id="refresh token rotation"),
    pytest.param(_code, id="authorization code exchange"),
    pytest.param(_device, id="device code exchange"),
]


def _token(client: FlaskClient, form: dict[str, str]) -> Any:
    return client.post("/oauth2/token", data={"client_id": CLI, **form})


def _assert_unavailable(r: Any) -> None:
    assert r.status_code == 503, r.json
    assert r.json["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("redeemable", REDEEMED)
def test_a_redemption_refused_for_lack_of_memory_leaves_the_old_value_redeemable(
    tmp_path: Path, demo_keys_dir: Path, redis_aof: RedisServer,
    redeemable: Callable[[FlaskClient, Components], dict[str, str]],
) -> None:
    """maxmemory reached with noeviction: Redis refuses the write of the new token."""
    client, comps, _ = _app(tmp_path, demo_keys_dir, redis_aof)
    form = redeemable(client, comps)
    admin = redis_aof.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    try:
        _assert_unavailable(_token(client, form))
    finally:
        admin.config_set("maxmemory", 0)
    r = _token(client, form)
    assert r.status_code == 200, r.json
    assert r.json["access_token"] and r.json["refresh_token"]
    assert _token(client, form).json["error"] == "invalid_grant", "still one use only"
    comps.close()


@pytest.mark.parametrize("redeemable", REDEEMED)
def test_redis_killed_between_reading_and_replacing_loses_nothing(
    tmp_path: Path, demo_keys_dir: Path, redis_aof: RedisServer,
    redeemable: Callable[[FlaskClient, Components], dict[str, str]],
) -> None:
    """SIGKILL right after the one-time value is read; Redis restarts from its AOF."""
    client, comps, store = _app(tmp_path, demo_keys_dir, redis_aof)
    form = redeemable(client, comps)
    store.fault = redis_aof.kill
    _assert_unavailable(_token(client, form))
    assert store.fault is None, "the fault fired"
    redis_aof.restart()
    r = _token(client, form)
    assert r.status_code == 200, r.json
    assert r.json["refresh_token"]
    comps.close()


@pytest.mark.parametrize("redeemable", REDEEMED)
def test_redis_stopped_during_a_redemption_loses_nothing_once_it_resumes(
    tmp_path: Path, demo_keys_dir: Path, redis_aof: RedisServer,
    redeemable: Callable[[FlaskClient, Components], dict[str, str]],
) -> None:
    """SIGSTOP: the request times out (503); the commands it sent run when Redis resumes."""
    client, comps, _ = _app(tmp_path, demo_keys_dir, redis_aof)
    form = redeemable(client, comps)
    redis_aof.pause()
    try:
        _assert_unavailable(_token(client, form))
    finally:
        redis_aof.resume()
    r = _token(client, form)
    assert r.status_code == 200, r.json
    assert r.json["refresh_token"]
    comps.close()
