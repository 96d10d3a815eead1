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
