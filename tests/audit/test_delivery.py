"""Audit records off the request path (``audit.delivery: async``): the queue drains on a clean
stop, backpressure instead of dropped records, batches that keep the signed trail verifiable,
a failing writer logged, retried and shown by /readyz, ``sync`` unchanged."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idp.app import build_components, create_app
from idp.audit import Auditor, FileSink, MemorySink, RequestInfo
from idp.audit import trail as trail_module
from idp.audit.alerts import open_auditor
from idp.audit.queued import QueuedSink, delivery_error
from idp.audit.trail import TrailSettings, TrailSink
from idp.audit.verify import verify
from idp.cli import main
from idp.store.memory import MemoryStore
from tests.helpers import config

INFO = RequestInfo("192.0.2.7", "test", "req")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _trail_records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted(directory.glob("logs/*/*.jsonl"))
            for line in p.read_text().splitlines()]


class GatedSink:
    """Records what it is given; each batch waits until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[list[str]] = []

    def write(self, record: Mapping[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.gate.wait()
        self.batches.append([str(r["requestID"]) for r in records])

    def close(self) -> None:
        pass


class FailingSink(MemorySink):
    """Refuses the first ``fail`` batches as a full disk would."""

    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail

    def write_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        for r in records:
            self.write(r)


def test_emit_returns_before_the_write_and_close_drains_every_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    auditor = Auditor(QueuedSink(FileSink(path), interval=30))
    sent = [auditor.emit("Login", RequestInfo("192.0.2.7", "t", f"r{i}"))["eventID"]
            for i in range(500)]
    assert path.read_text() == ""  # still queued: the writer waits up to 30 s or a full batch
    auditor.close()
    assert [r["eventID"] for r in _lines(path)] == sent


def test_a_full_batch_is_written_without_waiting_for_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    sink = QueuedSink(FileSink(path), interval=30, batch=10)
    auditor = Auditor(sink)
    for i in range(10):
        auditor.emit("Login", RequestInfo("192.0.2.7", "t", f"r{i}"))
    deadline = time.monotonic() + 10
    while len(path.read_text().splitlines()) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_lines(path)) == 10
    auditor.close()


def test_full_queue_makes_requests_wait_and_drops_no_record() -> None:
    inner = GatedSink()
    sink = QueuedSink(inner, interval=0.01, capacity=4, batch=2)
    auditor = Auditor(sink)
    done = threading.Event()

    def requests() -> None:
        for i in range(20):
            auditor.emit("Login", RequestInfo("192.0.2.7", "t", f"r{i}"))
        done.set()

    thread = threading.Thread(target=requests)
    thread.start()
    time.sleep(0.5)
    assert not done.is_set()  # waiting for room: at most 4 queued while the sink is stuck
    assert sink.pending() == 4
    inner.gate.set()
    thread.join(10)
    assert done.is_set()
    auditor.close()
    written = [rid for batch in inner.batches for rid in batch]
    assert written == [f"r{i}" for i in range(20)]
    assert max(len(b) for b in inner.batches) <= 2


def test_signed_trail_written_in_batches_verifies_with_every_record(
        tmp_path: Path, audit_keys: Path) -> None:
    directory = tmp_path / "trail"
    sink = QueuedSink(TrailSink(TrailSettings(directory, audit_keys, roll_bytes=8192)),
                      interval=0.02, batch=64)
    auditor = Auditor(sink)
    sent = [auditor.emit("Login", RequestInfo("192.0.2.7", "t", f"r{i}"), user="alice",
                         additional={"pad": "x" * 200})["eventID"] for i in range(1000)]
    auditor.close()
    assert [f for f in verify(directory, [audit_keys / "public"]) if not f.ok] == []
    assert [r["eventID"] for r in _trail_records(directory)] == sent
    assert len(list(directory.glob("logs/*/*.jsonl"))) > 10  # rolled inside batches


def test_trail_write_failing_midway_is_retried_without_duplicates_and_verifies(
        tmp_path: Path, audit_keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "trail"
    real_write = os.write
    calls = {"n": 0}

    def disk_full_once(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 3:  # the third file chunk of the batch: after two were appended
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(trail_module.os, "write", disk_full_once)
    sink = QueuedSink(TrailSink(TrailSettings(directory, audit_keys, roll_bytes=4096)),
                      interval=30, batch=1000)
    auditor = Auditor(sink)
    sent = [auditor.emit("Login", INFO, additional={"pad": "x" * 500})["eventID"]
            for i in range(40)]
    auditor.close()
    monkeypatch.setattr(trail_module.os, "write", real_write)
    assert sink.failures == 1
    assert [r["eventID"] for r in _trail_records(directory)] == sent
    assert [f for f in verify(directory, [audit_keys / "public"]) if not f.ok] == []


def test_writer_error_is_logged_retried_and_makes_readyz_unavailable(
        tmp_path: Path, demo_keys_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    inner = FailingSink(fail=10**6)
    sink = QueuedSink(inner, interval=0.01)
    cfg = config(tmp_path, demo_keys_dir)
    comps = build_components(cfg, auditor=Auditor(sink))
    client = create_app(cfg, comps).test_client()
    with caplog.at_level(logging.ERROR, logger="idp.audit"):
        comps.auditor.emit("Login", INFO, user="alice")
        deadline = time.monotonic() + 10
        while sink.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "No space left on device" in (sink.error or "")
    assert any("writing" in r.getMessage() and "retrying" in r.getMessage()
               for r in caplog.records)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["audit"] == "failing writes"
    inner.fail = 0  # room again: the kept records are written, readiness comes back
    assert sink.flush(10)
    assert delivery_error(comps.auditor.sink) is None
    assert client.get("/readyz").status_code == 200
    assert [r["eventName"] for r in inner.records].count("Login") == 1
    comps.close()


def test_child_after_fork_writes_its_own_records_not_the_parents(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    sink = QueuedSink(FileSink(path), interval=30)
    auditor = Auditor(sink)
    auditor.emit("Login", RequestInfo("192.0.2.7", "t", "parent-before"))
    pid = os.fork()
    if pid == 0:  # the child: its own queue and writer
        try:
            auditor.emit("Login", RequestInfo("192.0.2.7", "t", "child"))
            auditor.close()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    auditor.emit("Login", RequestInfo("192.0.2.7", "t", "parent-after"))
    auditor.close()
    assert sorted(r["requestID"] for r in _lines(path)) == [
        "child", "parent-after", "parent-before"]


@pytest.mark.parametrize(("delivery", "queued"), [
    pytest.param("async", True, id="async-default-queues-off-the-request"),
    pytest.param("sync", False, id="sync-writes-in-the-request-as-before"),
])
def test_delivery_setting_chooses_the_writer(tmp_path: Path, demo_keys_dir: Path,
                                             delivery: str, queued: bool) -> None:
    path = tmp_path / "audit.log"
    audit: dict[str, Any] = {"sink": "file", "path": str(path), "flush_interval_ms": 1000}
    if delivery == "sync":
        audit["delivery"] = "sync"
    auditor = open_auditor(config(tmp_path, demo_keys_dir, audit=audit), MemoryStore())
    assert isinstance(auditor.sink, QueuedSink) is queued
    auditor.emit("Login", INFO, user="alice")
    assert len(path.read_text().splitlines()) == (0 if queued else 1)
    auditor.close()
    assert len(_lines(path)) == 1


@pytest.mark.parametrize("audit", [
    pytest.param({"delivery": "later"}, id="unknown-delivery"),
    pytest.param({"queue_size": 0}, id="empty-queue"),
    pytest.param({"flush_interval_ms": 0}, id="zero-interval"),
    pytest.param({"flush_interval_ms": 60000}, id="interval-beyond-a-second"),
])
def test_config_check_refuses_bad_delivery_settings(tmp_path: Path, audit: dict[str, Any]
                                                    ) -> None:
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(json.dumps({"issuer": "http://127.0.0.1:8000", "secret_key": "k" * 48,
                               "audit": {"sink": "file", **audit}}))
    result = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert result.exit_code != 0
    assert f"audit.{next(iter(audit))}" in result.output


def test_alert_rules_see_every_queued_record_and_their_alert_is_written(
        tmp_path: Path, demo_keys_dir: Path) -> None:
    path = tmp_path / "audit.log"
    cfg = config(tmp_path, demo_keys_dir, audit={
        "sink": "file", "path": str(path), "flush_interval_ms": 1000,
        "alerts": {"rules": [{"name": "fails", "kind": "failed_ip", "threshold": 3}]}})
    auditor = open_auditor(cfg, MemoryStore())
    for i in range(3):
        auditor.emit("Login", RequestInfo("192.0.2.9", "t", f"r{i}"), user=f"u{i}",
                     error_code="FailedAuthentication")
    auditor.close()
    names = [r["eventName"] for r in _lines(path)]
    assert names == ["Login", "Login", "Login", "AlertTriggered"]
