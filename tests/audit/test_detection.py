"""Detection: the report and the alert rules catch a password spray and credential stuffing
run against a real ``idp serve``; alerts reach a webhook (HMAC-signed) once per window."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.audit import Auditor, MemorySink, RequestInfo
from idp.audit.alerts import AlertEngine, AlertingSink, Webhook, sign
from idp.audit.report import build_report
from idp.config import AlertsConfig
from idp.demo import USERS_FILE
from idp.store.memory import MemoryStore
from tests.fixtures.servers import free_port, wait_for_port

IDP = str(Path(sys.executable).parent / "idp")
SECRET = "webhook-secret-0123456789"


class Receiver:
    """A local webhook receiver: keeps each delivery's body and headers."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((body, dict(self.headers.items())))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        """The deliveries whose signature verifies (any other is a test failure)."""
        out = []
        for body, headers in self.got:
            expected = sign(SECRET, headers["X-Idp-Timestamp"], body)
            assert hmac.compare_digest(headers["X-Idp-Signature"], expected)
            out.append(json.loads(body))
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _failed(user: str, ip: str) -> dict[str, Any]:
    return {"eventName": "Login", "errorCode": "FailedAuthentication", "sourceIPAddress": ip,
            "userIdentity": {"type": "IdpUser", "userName": user}, "eventTime": "t"}


def _engine(**rule: Any) -> AlertEngine:
    cfg = AlertsConfig(rules=[{"name": "r", "window": 600, **rule}])  # type: ignore[list-item]
    return AlertEngine(cfg, MemoryStore(), clock=lambda: 1_800_000_000.0)


def test_spray_rule_counts_distinct_accounts_per_ip_and_fires_once_per_window() -> None:
    engine = _engine(kind="spray", threshold=5)
    fired = [a for i in range(12) for _ in range(2)
             for a in engine.observe(_failed(f"u{i}", "203.0.113.9"))]
    assert len(fired) == 1 and fired[0]["subject"] == "203.0.113.9"
    assert fired[0]["count"] == 5
    assert engine.observe(_failed("x", "203.0.113.10")) == []  # another IP counts apart


def test_spray_rule_ignores_many_tries_on_one_account() -> None:
    engine = _engine(kind="spray", threshold=3)
    assert [a for _ in range(50) for a in engine.observe(_failed("alice", "203.0.113.9"))] == []


def test_stuffing_rule_counts_distinct_ips_per_account() -> None:
    engine = _engine(kind="stuffing", threshold=4)
    fired = [a for i in range(10) for a in engine.observe(_failed("alice", f"198.51.100.{i}"))]
    assert [a["subject"] for a in fired] == ["alice"]


def test_break_glass_role_assumption_alerts_at_first_use() -> None:
    role = "arn:aws:iam::111122223333:role/BreakGlass"
    engine = _engine(kind="role_assumed", threshold=1, roles=[role])
    other = {"eventName": "AssumeRoleWithSAML", "resources": [
        {"ARN": "arn:aws:iam::111122223333:role/Developer", "type": "AWS::IAM::Role"}]}
    assert engine.observe(other) == []
    glass = {"eventName": "AssumeRoleWithSAML", "userIdentity": {"userName": "alice"},
             "resources": [{"ARN": role, "type": "AWS::IAM::Role"}]}
    assert [a["subject"] for a in engine.observe(glass)] == [role]


def test_alert_goes_to_the_log_and_a_signed_webhook(receiver: Receiver) -> None:
    sink = MemorySink()
    cfg = AlertsConfig(rules=[{"name": "fails", "kind": "failed_ip", "threshold": 2}])  # type: ignore[list-item]
    auditor = Auditor(AlertingSink(sink, AlertEngine(cfg, MemoryStore()),
                                   Webhook(receiver.url, SECRET)))
    for _ in range(3):
        auditor.emit("Login", RequestInfo("192.0.2.7"), user="bob",
                     error_code="FailedAuthentication")
    alerts = [r for r in sink.records if r["eventName"] == "AlertTriggered"]
    assert len(alerts) == 1 and alerts[0]["additionalEventData"]["subject"] == "192.0.2.7"
    deadline = time.time() + 10
    while not receiver.got and time.time() < deadline:
        time.sleep(0.05)
    assert [a["rule"] for a in receiver.alerts()] == ["fails"]


def test_webhook_signature_of_a_tampered_body_does_not_verify() -> None:
    body = b'{"rule":"r"}'
    good = sign(SECRET, "1700000000", body)
    assert good != sign(SECRET, "1700000000", body.replace(b"r", b"s"))
    assert good != sign(SECRET, "1700000001", body)
    assert good == "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body,
                                        hashlib.sha256).hexdigest()


def test_report_first_use_of_a_role_is_relative_to_earlier_history() -> None:
    def assume(user: str, role: str) -> dict[str, Any]:
        return {"eventName": "AssumeRoleWithSAML", "userIdentity": {"userName": user},
                "resources": [{"ARN": role, "type": "AWS::IAM::Role"}], "eventTime": "t"}

    rep = build_report([assume("bob", "Dev"), assume("bob", "Admin"), assume("bob", "Admin")],
                       [assume("bob", "Dev")])
    assert [(f["user"], f["role"]) for f in rep.first_use] == [("bob", "Admin")]
    assert rep.assumptions[("bob", "Admin")] == 2


def _serve_config(tmp_path: Path, port: int, hook: str) -> Path:
    path = tmp_path / "idp.yaml"
    path.write_text(json.dumps({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "k" * 48,
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(tmp_path / "keys"), "generate": True},
        "web": {"trusted_proxies": 1},
        "login": {"ip_failures_per_window": 1000},
        "audit": {"sink": "trail", "dir": str(tmp_path / "trail"),
                  "keys_dir": str(tmp_path / "audit-keys"), "alerts": {
                      "webhook_url": hook, "webhook_secret": SECRET, "rules": [
                          {"name": "password-spray", "kind": "spray", "threshold": 20},
                          {"name": "credential-stuffing", "kind": "stuffing",
                           "threshold": 8}]}}}))
    return path


def _try(url: str, user: str, ip: str, password: str) -> None:
    s = requests.Session()
    headers = {"X-Forwarded-For": ip}
    page = s.get(url + "/login", headers=headers, timeout=10).text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = s.post(url + "/login", headers=headers, timeout=10, allow_redirects=False,
               data={"username": user, "password": password, "csrf_token": csrf})
    assert r.status_code != 303  # never a success


def test_spray_and_stuffing_against_idp_serve_are_reported_and_alerted(
        tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    cfg = _serve_config(tmp_path, port, receiver.url)
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind",
                             f"127.0.0.1:{port}", "--workers", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 60)
        for attempt in range(2):  # the spray: one IP, 30 accounts, 2 tries each
            for i in range(30):
                _try(url, f"user{i:02d}", "203.0.113.50", f"Spring2026!{attempt}")
        for i in range(12):  # the stuffing: one account, 12 IPs
            _try(url, "alice", f"198.51.100.{i + 1}", f"leaked-{i}")
        deadline = time.time() + 15
        while len(receiver.got) < 2 and time.time() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    alerts = sorted(receiver.alerts(), key=lambda a: a["rule"])
    assert [(a["rule"], a["subject"]) for a in alerts] == [
        ("credential-stuffing", "alice"), ("password-spray", "203.0.113.50")]
    out = subprocess.run([IDP, "audit", "report", "--config", str(cfg), "--since", "1h",
                          "--json"], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout)
    assert report["passwordSpraying"] == [{"sourceIPAddress": "203.0.113.50", "accounts": 30,
                                           "failures": 60}]
    assert report["credentialStuffing"] == [{"account": "alice", "sourceIPs": 12,
                                             "failures": 12}]
    assert report["failedSignInsByIp"]["203.0.113.50"] == 60
    text = subprocess.run([IDP, "audit", "report", "--config", str(cfg), "--since", "1h"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert "203.0.113.50: 30 accounts, 60 failures" in text
    logged = subprocess.run([IDP, "audit", "lookup", "--config", str(cfg), "--event",
                             "AlertTriggered", "--json"], capture_output=True, text=True,
                            timeout=120, check=True).stdout.splitlines()
    assert sorted(json.loads(x)["additionalEventData"]["rule"] for x in logged) == [
        "credential-stuffing", "password-spray"]
    verify = subprocess.run([IDP, "audit", "verify", "--config", str(cfg), "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
