"""The operational log: text or JSON lines, each with the request ID of its audit record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fixtures.servers import free_port
from tests.helpers import config, make_app


def _caller_identity_with_store_down(tmp_path: Path, keys: Path,
                                     fmt: str) -> list[dict[str, Any]]:
    """GetCallerIdentity signed with credentials the store cannot be asked about (Redis is
    down): a 503, a log line and an audit record of the refusal."""
    store = {"url": f"redis://127.0.0.1:{free_port()}/0", "socket_timeout": 1.0}
    app, comps, sink = make_app(config(tmp_path, keys, store=store, logging={"format": fmt}))
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest("POST", "http://127.0.0.1:8000/sts", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("ASIAAAAAAAAAAAAAAAAA", "s" * 40, "token"), "sts",
              "us-east-1").add_auth(req)
    try:
        r = app.test_client().post("/sts", data=body, headers=dict(req.headers))
        assert r.status_code == 503 and "ServiceUnavailable" in r.get_data(as_text=True)
        return list(sink.records)
    finally:
        comps.close()


def test_json_log_line_carries_the_request_id_of_the_audit_record(
        tmp_path: Path, demo_keys_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``logging.format: json``: one JSON object a line with time, level, logger, message and
    the ``requestID`` that the audit record of the same request (and the response's
    ``x-amzn-RequestId``) carries."""
    records = _caller_identity_with_store_down(tmp_path, demo_keys_dir, "json")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()
             if line.startswith('{"time"')]
    store = [line for line in lines if line["logger"] == "idp.store"]
    assert store and store[0]["level"] == "ERROR"
    assert store[0]["message"].startswith("store unavailable: redis")
    assert set(store[0]) == {"time", "level", "logger", "message", "requestID"}
    (record,) = [r for r in records if r["eventName"] == "GetCallerIdentity"]
    assert record["errorCode"] == "ServiceUnavailable"
    assert {line["requestID"] for line in lines
            if line["logger"] in ("idp.store", "idp.sts")} == {record["requestID"]}


def test_text_log_line_names_the_request(tmp_path: Path, demo_keys_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    records = _caller_identity_with_store_down(tmp_path, demo_keys_dir, "text")
    line = next(x for x in capsys.readouterr().err.splitlines()
                if "idp.store: store unavailable" in x)
    assert "[ERROR]" in line and line.endswith(f"(request {records[-1]['requestID']})")


def test_log_lines_outside_a_request_have_no_request_id(
        tmp_path: Path, demo_keys_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    make_app(config(tmp_path, demo_keys_dir, logging={"format": "json"}))[1].close()
    logging.getLogger("idp.test").warning("outside")
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines()
               if x.startswith('{"time"') and "outside" in x]
    assert line["message"] == "outside" and "requestID" not in line


def _access_lines(app: Any, environ: dict[str, Any]) -> tuple[list[str], list[bytes] | None]:
    """Call ``AccessLog(app)`` once with a pipe as its log; the lines written and the body
    (None when the app raised)."""
    import os

    from idp.logs import AccessLog

    read, write = os.pipe()
    body = None
    try:
        body = list(AccessLog(app, write)(environ, lambda *args: None))
    except RuntimeError:
        pass
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as f:
        return f.read().decode().splitlines(), body


def _hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["REMOTE_ADDR"] = "203.0.113.9"  # as ProxyFix rewrites it
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"hello"]


_GET = {"REQUEST_METHOD": "GET", "PATH_INFO": "/oauth2/jwks", "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}


def test_access_log_writes_one_line_per_request_in_granian_format() -> None:
    """The peer's address (not the one a proxy header claims), the request line, the status
    and the time, as granian's own access log wrote them."""
    import re

    lines, body = _access_lines(_hello, dict(_GET))
    assert body == [b"hello"]
    assert len(lines) == 1
    assert re.fullmatch(r'\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] 127\.0\.0\.1 - '
                        r'"GET /oauth2/jwks HTTP/1\.1" 404 \d+\.\d{3}', lines[0]), lines


def test_access_log_escapes_a_newline_in_the_path_so_no_line_is_forged() -> None:
    """``%0A`` in a URL decodes to a newline in ``PATH_INFO``: written as it is, it would start
    a second, forged line."""
    forged = '/x\n[2026-01-01 00:00:00 +0000] 10.0.0.1 - "GET /admin HTTP/1.1" 200 0.1'
    lines, _ = _access_lines(_hello, {**_GET, "PATH_INFO": forged})
    assert len(lines) == 1 and '\\n[2026-01-01' in lines[0]


def test_access_log_records_a_request_whose_app_raised_as_500() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("bug")

    lines, body = _access_lines(broken, dict(_GET))
    assert body is None and len(lines) == 1 and '"GET /oauth2/jwks HTTP/1.1" 500 ' in lines[0]
