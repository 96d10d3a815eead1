"""Backends down: login says the service is unavailable, /readyz answers 503, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from idp.web.oidc_fast import FastOAuth
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.servers import free_port
from tests.helpers import config, login, make_app


def _ldap_section(port: int) -> dict[str, object]:
    return {"type": "ldap", "ldap": {
        "url": f"ldap://127.0.0.1:{port}",
        "bind_dn": "cn=idp-service,ou=services,dc=example,dc=org",
        "bind_password": "x", "user_base_dn": "ou=people,dc=example,dc=org", "timeout": 1.0}}


@pytest.mark.parametrize("down", [
    pytest.param("store", id="redis-down"),
    pytest.param("directory", id="ldap-down"),
])
def test_backend_down_gives_503_login_page_and_readyz(tmp_path: Path, demo_keys_dir: Path,
                                                      down: str) -> None:
    port = free_port()  # nothing listens there
    sections: dict[str, object] = (
        {"store": {"url": f"redis://127.0.0.1:{port}/0", "socket_timeout": 1.0}}
        if down == "store" else {"directory": _ldap_section(port)})
    app, comps, sink = make_app(config(tmp_path, demo_keys_dir, **sections))
    client = app.test_client()
    r = login(client, "alice", "alice-password")
    body = r.get_data(as_text=True)
    assert r.status_code == 503
    assert "temporarily unavailable" in body and "Traceback" not in body
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["status"] == "unavailable"
    assert ready.json["checks"] == {"store": "ok", "directory": "ok", down: "unreachable"}
    assert client.get("/healthz").status_code == 200
    assert "alice-password" not in repr(sink.records)
    comps.close()


# -- /readyz on a real redis-server that misbehaves ---------------------------------------------

AOF = ["--appendonly", "yes", "--appendfsync", "always"]


def _ready(tmp_path: Path, keys: Path, server: RedisServer) -> tuple[int, dict[str, object]]:
    app, comps, _ = make_app(config(tmp_path, keys, store={"url": server.url,
                                                           "socket_timeout": 1.0}))
    try:
        r = app.test_client().get("/readyz")
        return r.status_code, r.json
    finally:
        comps.close()


@pytest.mark.redis
def test_readyz_is_unavailable_while_redis_refuses_every_write(tmp_path: Path,
                                                               demo_keys_dir: Path) -> None:
    """maxmemory reached with noeviction: PING answers, every write is refused (OOM)."""
    server = RedisServer(tmp_path / "redis", extra=AOF).start()
    try:
        assert _ready(tmp_path, demo_keys_dir, server) == (
            200, {"status": "ok", "checks": {"store": "ok", "directory": "ok"}})
        server.client().config_set("maxmemory", 1)
        status, body = _ready(tmp_path, demo_keys_dir, server)
        assert status == 503
        assert body["checks"] == {"store": "refuses writes", "directory": "ok"}
    finally:
        server.stop()


@pytest.mark.redis
@pytest.mark.parametrize(("extra", "expected"), [
    pytest.param([], ["redis persistence: appendonly is off"], id="no persistence"),
    pytest.param([*AOF, "--maxmemory-policy", "allkeys-lru"],
                 ["redis maxmemory-policy `allkeys-lru` may evict"], id="evicting policy"),
    pytest.param([*AOF, "--maxmemory-policy", "volatile-ttl"],
                 ["redis maxmemory-policy `volatile-ttl` may evict"],
                 id="volatile policy evicts our keys too: all have a TTL"),
    pytest.param([*AOF, "--rename-command", "CONFIG", ""], [],
                 id="CONFIG disabled: settings read with INFO"),
    pytest.param(["--rename-command", "INFO", ""], ["redis: cannot read"],
                 id="INFO disabled: said, still ready"),
])
def test_readyz_warns_of_redis_settings_that_may_lose_security_keys(
    tmp_path: Path, demo_keys_dir: Path, extra: list[str], expected: list[str],
) -> None:
    server = RedisServer(tmp_path / "redis", extra=extra).start()
    try:
        status, body = _ready(tmp_path, demo_keys_dir, server)
    finally:
        server.stop()
    assert status == 200 and body["status"] == "ok"
    warnings = body.get("warnings", [])
    assert isinstance(warnings, list) and len(warnings) == len(expected)
    for text, start in zip(sorted(warnings), sorted(expected), strict=True):
        assert text.startswith(start)


def test_readyz_warns_that_the_memory_store_lives_in_one_process(tmp_path: Path,
                                                                 demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    body = app.test_client().get("/readyz").json
    assert body["status"] == "ok" and body["warnings"][0].startswith("memory store:")
    comps.close()


# -- operational log lines, with the true cause ----------------------------------------------


@pytest.mark.parametrize("attempts", [1, 3], ids=["first attempt", "later attempts"])
def test_refused_ldap_connection_is_logged_as_refused_not_invalid_address(
    attempts: int, caplog: pytest.LogCaptureFixture,
) -> None:
    """ldap3 remembers a refused address and then says "invalid server address"."""
    from idp.config import DirectoryConfig
    from idp.directory import open_directory
    from idp.errors import DirectoryUnavailable

    directory = open_directory(DirectoryConfig.model_validate(_ldap_section(free_port())))
    caplog.set_level("ERROR", logger="idp.directory")
    for _ in range(attempts):
        caplog.clear()
        with pytest.raises(DirectoryUnavailable) as info:
            directory.authenticate("alice", "alice-password")
        assert "refused" in info.value.debug.lower()
        assert "invalid server address" not in info.value.debug
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("idp.directory")]
    assert lines and "refused" in lines[-1].lower(), lines
    assert "alice-password" not in " ".join(lines)
    directory.close()


def test_store_outage_is_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    from idp.errors import StoreUnavailable
    from idp.store import open_store

    store = open_store(f"redis://:hunter2-Secret@127.0.0.1:{free_port()}/0")
    caplog.set_level("ERROR", logger="idp.store")
    with pytest.raises(StoreUnavailable):
        store.get("idp:sess:x")
    lines = [r.getMessage() for r in caplog.records if r.name == "idp.store"]
    assert len(lines) == 1 and "GET" in lines[0] and "refused" in lines[0].lower()
    assert "hunter2-Secret" not in lines[0]
    store.close()


# -- Retry-After on every 503 ------------------------------------------------------------------

REQUESTS_WHEN_DOWN = [
    pytest.param("post", "/login", None, id="login page"),
    pytest.param("get", "/oauth2/authorize?response_type=code&client_id=demo-web&redirect_uri="
                 "http%3A%2F%2F127.0.0.1%3A8400%2Fcallback&scope=openid", None,
                 id="authorize page"),
    pytest.param("post", "/oauth2/introspect", "application/x-www-form-urlencoded",
                 id="introspection, direct WSGI path"),
    pytest.param("post", "/oauth2/introspect", "flask", id="introspection, flask route"),
    pytest.param("post", "/oauth2/token", "application/x-www-form-urlencoded",
                 id="token, direct WSGI path"),
    pytest.param("post", "/oauth2/token", "flask", id="token, flask route"),
    pytest.param("post", "/oauth2/revoke", "application/x-www-form-urlencoded",
                 id="revocation, direct WSGI path"),
]


@pytest.mark.parametrize(("method", "path", "ctype"), REQUESTS_WHEN_DOWN)
def test_every_503_says_when_to_retry(tmp_path: Path, demo_keys_dir: Path, method: str,
                                      path: str, ctype: str | None) -> None:
    """RFC 9110 §10.2.3: pages, JSON endpoints and both paths of the M2M endpoints alike."""
    import base64

    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, store={
        "url": f"redis://127.0.0.1:{free_port()}/0", "socket_timeout": 1.0}), demo=True)
    client = app.test_client()
    signer = comps.extras["oidc"].core.signer
    token = signer.sign({"iss": comps.config.issuer, "aud": comps.config.issuer,
                         "exp": 4_000_000_000, "jti": "j", "client_id": "demo-web"},
                        typ="at+jwt")
    auth = "Basic " + base64.b64encode(b"demo-web:demo-web-secret").decode()
    form = {"grant_type": "refresh_token", "refresh_token": "a.b", "token": token,
            "username": "alice", "password": "alice-password"}
    if path == "/login":
        r = login(client, "alice", "alice-password")
    elif method == "get":
        r = client.get(path)
    elif ctype == "flask":  # the Flask route behind the direct WSGI path
        layer: Any = app.wsgi_app
        while not isinstance(layer, FastOAuth):
            layer = layer.app
        r = Client(layer.app, TestResponse).post(path, data=form,
                                                  headers={"Authorization": auth})
    else:
        r = client.post(path, data=form, headers={"Authorization": auth})
    assert r.status_code == 503, r.get_data(as_text=True)[:300]
    assert r.headers.get("Retry-After", "").isdigit()
    comps.close()
