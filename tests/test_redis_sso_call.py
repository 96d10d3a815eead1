"""The call SAML SSO makes (``add_then_get_many``: the AuthnRequest ID's claim and the session
read in one Lua script) on a real ``redis-server`` that misbehaves: a pooled connection the
server dropped is retried once, at once; a call that timed out leaves no reply behind for the
next call to read as its own; a server that is down is :class:`StoreUnavailable`, and the
store answers again once it is back on the same port."""

from __future__ import annotations

import pytest

from idp.errors import StoreUnavailable
from idp.store import key, new_id
from idp.store.redis import RedisStore
from tests.fixtures.redis_server import RedisServer


@pytest.fixture
def server(redis_stoppable: RedisServer) -> RedisServer:
    return redis_stoppable


def _claim(store: RedisStore, *reads: str) -> tuple[bool, list[bytes | None]]:
    return store.add_then_get_many(key("saml_rid", new_id()), b"1", 60, list(reads))


def test_a_connection_the_server_dropped_is_retried_once(server: RedisServer) -> None:
    store = RedisStore.from_url(server.url)
    admin = server.client()
    try:
        admin.set("idp:sess:a", b"A")
        assert _claim(store, "idp:sess:a") == (True, [b"A"])  # a pooled connection now
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        assert _claim(store, "idp:sess:a") == (True, [b"A"])
    finally:
        admin.close()
        store.close()


def test_a_timed_out_call_leaves_no_reply_for_the_next_one(server: RedisServer) -> None:
    store = RedisStore.from_url(server.url + "?socket_timeout=0.3")
    admin = server.client()
    try:
        admin.set("idp:sess:a", b"A")
        admin.set("idp:sess:b", b"B")
        assert _claim(store, "idp:sess:b") == (True, [b"B"])
        server.pause()
        try:
            with pytest.raises(StoreUnavailable):
                _claim(store, "idp:sess:a")  # its reply comes once the server runs again
        finally:
            server.resume()
        for _ in range(3):  # each answer is its own call's, not the one that timed out
            assert _claim(store, "idp:sess:b") == (True, [b"B"])
    finally:
        admin.close()
        store.close()


def test_a_server_down_is_unavailable_and_then_answers_again(server: RedisServer) -> None:
    store = RedisStore.from_url(server.url + "?socket_timeout=0.5")
    try:
        assert _claim(store)[0] is True
        assert _claim(store, "idp:sess:x") == (True, [None])
        server.kill()
        with pytest.raises(StoreUnavailable):
            _claim(store, "idp:sess:x")
        server.restart()  # the same port; the pooled connection is stale: retried once
        assert _claim(store, "idp:sess:x") == (True, [None])
    finally:
        store.close()
