"""Many writers for real: ``idp serve`` with two workers (gunicorn and granian) on a shared
Redis store writes one stream per worker, and the whole trail verifies after a stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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
    sent = 0
    try:
        wait_for_port(port, 60)
        def refused(i: int) -> int:
            return requests.post(url + "/oauth2/token", timeout=10,
                                 headers={"Connection": "close"},
                                 data={"grant_type": "client_credentials", "client_id": f"c{i}",
                                       "client_secret": "nope"}).status_code

        # one connection each, 8 at a time, in batches until both workers have written (the
        # second worker may still be building the app when the port first answers)
        with ThreadPoolExecutor(8) as pool:
            while sent < 40 * 15:
                assert set(pool.map(refused, range(sent, sent + 40))) == {401}
                sent += 40
                if len(_writers(tmp_path / "trail")) == 2:
                    break
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out.decode()[-2000:]
    findings = verify(tmp_path / "trail", [tmp_path / "audit-keys" / "public"])
    assert [f for f in findings if not f.ok] == []
    records = [json.loads(line) for p in (tmp_path / "trail").glob("logs/*/*.jsonl")
               for line in p.read_text().splitlines()]
    refused = [r for r in records if r["eventName"] == "OidcTokenRefused"]
    assert len(refused) == sent
    writers = _writers(tmp_path / "trail")
    assert len(writers) == 2, writers


def _writers(trail: Path) -> set[str]:
    """The streams holding a refused token request (complete lines only: a worker may be
    writing one right now)."""
    found = set()
    for p in trail.glob("logs/*/*.jsonl"):
        for line in p.read_text().splitlines():
            try:
                if json.loads(line)["eventName"] == "OidcTokenRefused":
                    found.add(p.parent.name)
                    break
            except ValueError:
                continue
    return found
