"""Audit records: CloudTrail-like fields, JSON lines, secrets redacted."""

from __future__ import annotations

import json
from pathlib import Path

from idp.audit import REDACTED, Auditor, FileSink, RequestInfo


def test_file_sink_writes_one_cloudtrail_like_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.log"
    auditor = Auditor(FileSink(path))
    info = RequestInfo("192.0.2.10", "curl/8", "req-1")
    auditor.emit("Login", info, user="alice", event_type="AwsConsoleSignIn")
    auditor.emit("Login", info, user="bob", error_code="FailedAuthentication",
                 error_message="Failed authentication")
    auditor.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert first["eventName"] == "Login" and first["userIdentity"]["userName"] == "alice"
    assert first["sourceIPAddress"] == "192.0.2.10" and first["requestID"] == "req-1"
    assert first["eventTime"].endswith("Z") and "errorCode" not in first
    assert second["errorCode"] == "FailedAuthentication"
    assert path.stat().st_mode & 0o077 == 0


def test_secret_looking_fields_are_redacted_at_any_depth(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    auditor = Auditor(FileSink(path))
    auditor.emit("X", RequestInfo(), additional={
        "password": "p1", "nested": {"client_secret": "p2", "ok": "visible"},
        "items": [{"SAMLResponse": "p3"}]})
    auditor.close()
    text = path.read_text()
    assert "p1" not in text and "p2" not in text and "p3" not in text
    assert "visible" in text and REDACTED in text
