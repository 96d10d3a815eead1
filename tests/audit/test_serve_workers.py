"""Many writers for real: ``idp serve`` with two workers (gunicorn and granian) on a shared
Redis store writes one stream per worker, and the whole trail verifies after a stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from idp.audit.verify import verify
from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port

IDP = str(Path(sys.executable).parent / "idp")


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_two_workers_write_their_own_streams_and_the_trail_verifies(
        tmp_path: Path, redis_url: str, server: str) -> None:
    port = free_port()
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(json.dumps({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "k" * 48,
        "store": {"url": redis_url},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(tmp_path / "keys"), "generate": True},
        "audit": {"sink": "trail", "dir": str(tmp_path / "trail"),
                  "keys_dir": str(tmp_path / "audit-keys"), "roll_bytes": 4096}}))
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "--server", server], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 60)
        for i in range(40):  # one connection each: both workers get some
            r = requests.post(url + "/oauth2/token", timeout=10, headers={"Connection": "close"},
                              data={"grant_type": "client_credentials", "client_id": f"c{i}",
                                    "client_secret": "nope"})
            assert r.status_code == 401
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out.decode()[-2000:]
    findings = verify(tmp_path / "trail", [tmp_path / "audit-keys" / "public"])
    assert [f for f in findings if not f.ok] == []
    records = [json.loads(line) for p in (tmp_path / "trail").glob("logs/*/*.jsonl")
               for line in p.read_text().splitlines()]
    refused = [r for r in records if r["eventName"] == "OidcTokenRefused"]
    assert len(refused) == 40
    writers = {p.parent.name for p in (tmp_path / "trail").glob("logs/*/*.jsonl")
               if any(json.loads(x)["eventName"] == "OidcTokenRefused"
                      for x in p.read_text().splitlines())}
    assert len(writers) == 2, writers
