"""``audit.delivery: async`` under ``idp serve`` for real: a clean stop (SIGTERM) right after
the last acknowledged request loses no record and the trail verifies, under gunicorn and
granian; a SIGKILL loses at most the records of the last flush interval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.audit.verify import verify
from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port

IDP = str(Path(sys.executable).parent / "idp")
INTERVAL_MS = 1000  # long, so that the last records are still queued when the stop comes


def _start(tmp_path: Path, server: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(json.dumps({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "k" * 48,
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(tmp_path / "keys"), "generate": True},
        "audit": {"sink": "trail", "dir": str(tmp_path / "trail"),
                  "keys_dir": str(tmp_path / "audit-keys"), "roll_bytes": 16384,
                  "delivery": "async", "flush_interval_ms": INTERVAL_MS}}))
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--server", server], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ))
    wait_for_port(port, 60)
    return proc, f"http://127.0.0.1:{port}"


def _refused(http: requests.Session, url: str, ids: range,
             acked: dict[str, float] | None = None) -> list[str]:
    """Refused client_credentials grants (each one audited) of clients ``c<i>``; the client
    IDs, and in ``acked`` when each was answered."""
    out = []
    for i in ids:
        r = http.post(url + "/oauth2/token", timeout=10, data={
            "grant_type": "client_credentials", "client_id": f"c{i}", "client_secret": "nope"})
        assert r.status_code == 401
        out.append(f"c{i}")
        if acked is not None:
            acked[out[-1]] = time.monotonic()
    return out


def _records(trail: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in trail.glob("logs/*/*.jsonl")
            for line in p.read_text().splitlines()]


def _refused_ids(trail: Path) -> set[str]:
    return {r["additionalEventData"]["clientId"] for r in _records(trail)
            if r["eventName"] == "OidcTokenRefused"}


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_sigterm_right_after_acknowledged_requests_loses_no_record_and_trail_verifies(
        tmp_path: Path, server: str) -> None:
    proc, url = _start(tmp_path, server)
    try:
        with requests.Session() as http:
            _refused(http, url, range(3))  # the worker is up and writing
            sent = _refused(http, url, range(3, 203))
        queued = len(set(sent) - _refused_ids(tmp_path / "trail"))
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out.decode()[-2000:]
    assert set(sent) <= _refused_ids(tmp_path / "trail"), f"{queued} queued at SIGTERM"
    assert [f for f in verify(tmp_path / "trail", [tmp_path / "audit-keys" / "public"])
            if not f.ok] == []
    # every stream (the master's check, the worker) ended with its final digest: verifiable
    # for good, not only while a stream without one may still be live
    for stream in (tmp_path / "trail" / "digests").iterdir():
        last = max(stream.glob("*.json"))
        assert json.loads(last.read_text())["final"] is True, last.name


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_sigkill_loses_at_most_the_records_of_the_last_interval(tmp_path: Path) -> None:
    proc, url = _start(tmp_path, "gunicorn")
    acked: dict[str, float] = {}
    try:
        with requests.Session() as http:
            _refused(http, url, range(3))
            sent = _refused(http, url, range(3, 103), acked)
            time.sleep(2.5 * INTERVAL_MS / 1000)
            sent += _refused(http, url, range(103, 203), acked)
        for pid in _children(proc.pid):  # the worker first: a master gone would stop it cleanly
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    found = _refused_ids(tmp_path / "trail")
    lost = [rid for rid in sent if rid not in found]
    print(f"SIGKILL lost {len(lost)} of {len(sent)} acknowledged records")
    # what was answered more than an interval (and a margin for the write) before the kill is
    # on disk; what is lost is the newest records only, and no more than a queue holds
    bound = killed - 1.5 * INTERVAL_MS / 1000
    assert [rid for rid in lost if acked[rid] < bound] == []
    assert lost == sent[len(sent) - len(lost):]
    assert len(lost) <= 10000
