"""The production path over real HTTP: a real slapd directory and a real Redis store.

`idp serve` (two workers that share nothing but Redis, under gunicorn and under granian)
signs alice in against slapd; every later request, whichever worker takes it, finds her
session in Redis.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
import yaml

from tests.fixtures.servers import free_port, wait_for_port
from tests.fixtures.slapd import Slapd

IDP = str(Path(sys.executable).parent / "idp")


def _login(http: requests.Session, base: str, username: str, password: str,
           next_path: str = "/account") -> requests.Response:
    page = http.get(f"{base}/login", params={"next": next_path}, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    return http.post(f"{base}/login", data={"username": username, "password": password,
                                             "csrf_token": token.group(1), "next": next_path},
                     timeout=10)


@pytest.fixture(params=["gunicorn", "granian"])
def served(request: pytest.FixtureRequest, tmp_path: Path, slapd: Slapd,
           redis_url: str) -> Iterator[str]:
    port = free_port()
    cfg = {
        "issuer": f"http://127.0.0.1:{port}",
        "secret_key": "${IDP_SECRET_KEY}",
        "store": {"url": redis_url},
        "directory": {"type": "ldap", "ldap": {
            "url": slapd.url, "bind_dn": slapd.bind_dn, "bind_password": "${LDAP_PASSWORD}",
            "user_base_dn": slapd.people_dn, "timeout": 3.0}},
        "keys": {"dir": "keys", "generate": True},
        "audit": {"sink": "file", "path": "audit.log"},
    }
    path = tmp_path / "idp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "IDP_SECRET_KEY": "k" * 48, "LDAP_PASSWORD": slapd.bind_password}
    proc = subprocess.Popen([IDP, "serve", "--config", str(path), "--bind",
                             f"127.0.0.1:{port}", "--workers", "2", "--server",
                             request.param], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def test_alice_signs_in_against_slapd_with_session_in_redis(served: str, redis_url: str,
                                                            tmp_path: Path) -> None:
    http = requests.Session()
    r = _login(http, served, "alice", "alice-password")
    assert r.status_code == 200 and r.url == f"{served}/account"
    assert "admins" in r.text and "engineering" in r.text
    for _ in range(10):  # gunicorn spreads these over both workers: only Redis is shared
        assert http.get(f"{served}/account", timeout=10, allow_redirects=False).status_code == 200
    client = redis.Redis.from_url(redis_url)
    keys = client.keys("idp:sess:*")
    assert len(keys) == 1 and 0 < client.ttl(keys[0]) <= 1800
    sid = http.cookies["idp_session"]
    assert sid.encode() not in keys[0]  # the store holds a hash, not the cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      http.get(f"{served}/account", timeout=10).text)
    assert token
    http.post(f"{served}/logout", data={"csrf_token": token.group(1)}, timeout=10)
    assert client.keys("idp:sess:*") == []
    deadline = time.monotonic() + 5  # records are written within audit.flush_interval_ms
    while '"eventName":"Logout"' not in (tmp_path / "audit.log").read_text() and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    audit = (tmp_path / "audit.log").read_text()
    assert '"eventName":"Login"' in audit and '"eventName":"Logout"' in audit
    assert "alice-password" not in audit


@pytest.mark.parametrize(("username", "password"), [
    pytest.param("alice", "wrong", id="wrong-password"),
    pytest.param("nobody", "alice-password", id="unknown-user"),
    pytest.param("*)(uid=*))(|(uid=*", "x", id="ldap-filter-injection"),
    pytest.param("admin)(&)", "x", id="ldap-absolute-true-injection"),
    pytest.param("alice", "", id="empty-password-unauthenticated-bind"),
])
def test_bad_credentials_against_slapd_get_the_generic_answer(
        served: str, username: str, password: str) -> None:
    r = _login(requests.Session(), served, username, password)
    assert r.status_code == 401 and "Invalid username or password." in r.text
