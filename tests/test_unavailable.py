"""Backends down: login says the service is unavailable, /readyz answers 503, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    assert ready.json == {"status": "unavailable",
                          "checks": {"store": "ok", "directory": "ok", down: "unreachable"}}
    assert client.get("/healthz").status_code == 200
    assert "alice-password" not in repr(sink.records)
    comps.close()
