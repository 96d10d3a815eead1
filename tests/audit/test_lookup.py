"""Lookup: ``idp audit lookup`` and CloudTrail's ``LookupEvents`` at ``/cloudtrail`` through
boto3 and the AWS CLI, unmodified, against a live IdP whose audit sink is the signed trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from click.testing import CliRunner

from idp.audit import RequestInfo
from idp.audit.index import AuditIndex, Query
from idp.cli import main
from tests.fixtures.live import LiveIdp
from tests.sts.live import login, saml_response, sts_client

ACCT = "111122223333"
PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"


def creds(idp: LiveIdp, user: str, role_name: str) -> dict[str, Any]:
    saml = saml_response(login(idp.url, user), idp.url)
    out = sts_client(idp.url).assume_role_with_saml(
        RoleArn=f"arn:aws:iam::{ACCT}:role/{role_name}", PrincipalArn=PROVIDER,
        SAMLAssertion=saml)
    return dict(out["Credentials"])


def cloudtrail(idp: LiveIdp, c: dict[str, Any]) -> Any:
    return boto3.client("cloudtrail", endpoint_url=idp.url + "/cloudtrail",
                        region_name="us-east-1", aws_access_key_id=c["AccessKeyId"],
                        aws_secret_access_key=c["SecretAccessKey"],
                        aws_session_token=c["SessionToken"])


def seed(idp: LiveIdp, n: int, user: str = "paging-user", event: str = "SeedEvent") -> None:
    for i in range(n):
        idp.components.auditor.emit(event, RequestInfo("198.51.100.7", "seed", f"seed-{i}"),
                                    user=user)
    idp.components.auditor.flush()  # written now (the writer thread would, within 0.1 s)


def test_boto3_lookup_by_user_pages_across_three_pages(trail_idp: LiveIdp) -> None:
    seed(trail_idp, 120)
    client = cloudtrail(trail_idp, creds(trail_idp, "alice", "Admin"))
    attrs = [{"AttributeKey": "Username", "AttributeValue": "paging-user"}]
    pages = list(client.get_paginator("lookup_events").paginate(
        LookupAttributes=attrs, PaginationConfig={"PageSize": 50}))
    assert [len(p["Events"]) for p in pages] == [50, 50, 20]
    events = [e for p in pages for e in p["Events"]]
    assert len({e["EventId"] for e in events}) == 120
    assert all(e["Username"] == "paging-user" and e["EventName"] == "SeedEvent"
               for e in events)
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)  # newest first
    first = json.loads(events[0]["CloudTrailEvent"])
    assert first["requestID"] == "seed-119" and first["sourceIPAddress"] == "198.51.100.7"
    page1 = client.lookup_events(LookupAttributes=attrs, MaxResults=50)
    page2 = client.lookup_events(LookupAttributes=attrs, MaxResults=50,
                                 NextToken=page1["NextToken"])
    assert [e["EventId"] for e in page1["Events"] + page2["Events"]] == \
        [e["EventId"] for e in events[:100]]


def test_boto3_lookup_by_event_name_and_time_window(trail_idp: LiveIdp) -> None:
    seed(trail_idp, 3, user="carol", event="OtherEvent")
    admin = creds(trail_idp, "alice", "Admin")
    client = cloudtrail(trail_idp, admin)
    now = datetime.now(UTC)
    got = client.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRoleWithSAML"}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1))["Events"]
    assert len(got) == 1 and got[0]["AccessKeyId"] == admin["AccessKeyId"]
    assert got[0]["Resources"] == [{"ResourceType": "AWS::IAM::Role",
                                    "ResourceName": f"arn:aws:iam::{ACCT}:role/Admin"}]
    assert client.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "OtherEvent"}],
        StartTime=now - timedelta(hours=2), EndTime=now - timedelta(hours=1))["Events"] == []
    time.sleep(0.3)  # the index reads new lines at most every 0.25 s
    by_key = client.lookup_events(LookupAttributes=[
        {"AttributeKey": "AccessKeyId", "AttributeValue": admin["AccessKeyId"]}])["Events"]
    assert {e["EventName"] for e in by_key} == {"AssumeRoleWithSAML", "LookupEvents"}


def test_role_without_lookup_permission_gets_access_denied(trail_idp: LiveIdp) -> None:
    """ReadOnly allows ``*:Get*``, ``*:List*``, ``*:Describe*``: not ``LookupEvents``."""
    client = cloudtrail(trail_idp, creds(trail_idp, "bob", "ReadOnly"))
    with pytest.raises(ClientError) as denied:
        client.lookup_events()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in denied.value.response["Error"]["Message"]


@pytest.mark.parametrize(("body", "code"), [
    pytest.param({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "a"},
                                       {"AttributeKey": "EventName", "AttributeValue": "b"}]},
                 "InvalidLookupAttributesException", id="two-attributes"),
    pytest.param({"LookupAttributes": [{"AttributeKey": "Password", "AttributeValue": "a"}]},
                 "InvalidLookupAttributesException", id="unknown-attribute"),
    pytest.param({"StartTime": 2000, "EndTime": 1000}, "InvalidTimeRangeException",
                 id="start-after-end"),
    pytest.param({"MaxResults": 51}, "InvalidMaxResultsException", id="max-results-51"),
    pytest.param({"NextToken": "eyJ9.AAAA"}, "InvalidNextTokenException", id="forged-token"),
])
def test_invalid_requests_get_cloudtrail_errors(trail_idp: LiveIdp, body: dict[str, Any],
                                                code: str) -> None:
    client = cloudtrail(trail_idp, creds(trail_idp, "alice", "Admin"))
    client.meta.events.register("before-parameter-build.*", lambda params, **kw: None)
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    req = AWSRequest("POST", trail_idp.url + "/cloudtrail/", data=json.dumps(body), headers={
        "X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(client._request_signer._credentials, "cloudtrail", "us-east-1").add_auth(req)
    r = requests.post(req.url, data=req.body, headers=dict(req.headers), timeout=10)
    assert r.status_code == 400 and r.json()["__type"] == code


def test_next_token_of_another_query_is_refused(trail_idp: LiveIdp) -> None:
    seed(trail_idp, 5)
    client = cloudtrail(trail_idp, creds(trail_idp, "alice", "Admin"))
    attrs = [{"AttributeKey": "Username", "AttributeValue": "paging-user"}]
    token = client.lookup_events(LookupAttributes=attrs, MaxResults=2)["NextToken"]
    with pytest.raises(ClientError) as bad:
        client.lookup_events(MaxResults=2, NextToken=token)
    assert bad.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_unsigned_and_unknown_operation_refused(trail_idp: LiveIdp) -> None:
    r = requests.post(trail_idp.url + "/cloudtrail", data="{}", headers={
        "X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"}, timeout=10)
    assert r.status_code in (400, 403) and "__type" in r.json()
    r = requests.post(trail_idp.url + "/cloudtrail", data="{}", headers={
        "X-Amz-Target": TARGET.replace("LookupEvents", "DeleteTrail")}, timeout=10)
    assert r.status_code == 400 and r.json()["__type"] == "UnknownOperationException"


def _aws(url: str, c: dict[str, Any], *args: str) -> Any:
    aws = Path(sys.executable).parent / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
                "AWS_SESSION_TOKEN": c["SessionToken"]})
    return subprocess.run([str(aws), "cloudtrail", *args, "--endpoint-url", url + "/cloudtrail",
                           "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_aws_cli_lookup_events_pages_and_filters(trail_idp: LiveIdp) -> None:
    seed(trail_idp, 110)
    seed(trail_idp, 2, user="someone-else")
    admin = creds(trail_idp, "alice", "Admin")
    done = _aws(trail_idp.url, admin, "lookup-events", "--lookup-attributes",
                "AttributeKey=Username,AttributeValue=paging-user", "--page-size", "50")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["Events"]) == 110  # three pages, followed by the CLI
    done = _aws(trail_idp.url, admin, "lookup-events", "--lookup-attributes",
                "AttributeKey=EventName,AttributeValue=SeedEvent", "--max-items", "60",
                "--page-size", "50")
    out = json.loads(done.stdout)
    assert len(out["Events"]) == 60 and out.get("NextToken")
    denied = _aws(trail_idp.url, creds(trail_idp, "carol", "ReadOnly"), "lookup-events")
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr


def test_refused_lookups_are_audited(trail_idp: LiveIdp, tmp_path: Path) -> None:
    client = cloudtrail(trail_idp, creds(trail_idp, "bob", "ReadOnly"))
    with pytest.raises(ClientError):
        client.lookup_events()
    trail_idp.components.auditor.flush()
    index = AuditIndex(tmp_path / "trail", min_refresh=0)
    events, _ = index.lookup(Query([("EventName", "LookupEvents")]))
    assert events[0]["errorCode"] == "AccessDeniedException"
    assert events[0]["userIdentity"]["userName"].startswith(
        f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/")


def test_index_reads_only_new_lines_and_forgets_past_retention(tmp_path: Path,
                                                               audit_keys: Path) -> None:
    from idp.audit import Auditor
    from idp.audit.trail import TrailSettings, TrailSink

    clock = [time.time()]
    sink = TrailSink(TrailSettings(tmp_path / "t", audit_keys))
    auditor = Auditor(sink)
    index = AuditIndex(tmp_path / "t", retention_days=1, clock=lambda: clock[0],
                       min_refresh=0)
    auditor.emit("A", RequestInfo(), user="u")
    assert index.refresh() == 1
    auditor.emit("B", RequestInfo(), user="u")
    assert index.refresh() == 1 and index.refresh() == 0
    assert [e["eventName"] for e in index.lookup(Query([("Username", "u")]))[0]] == ["B", "A"]
    clock[0] += 2 * 86400
    assert index.lookup(Query([("Username", "u")]))[0] == []
    sink.close()


def test_cli_lookup_combines_filters(trail_idp: LiveIdp, tmp_path: Path,
                                     audit_keys: Path) -> None:
    seed(trail_idp, 2)
    seed(trail_idp, 1, user="paging-user", event="Other")
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(json.dumps({
        "issuer": "http://127.0.0.1:8000", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": "users.yaml"}},
        "audit": {"sink": "trail", "dir": str(tmp_path / "trail"),
                  "keys_dir": str(audit_keys)}}))
    out = CliRunner().invoke(main, ["audit", "lookup", "--config", str(cfg), "--user",
                                    "paging-user", "--event", "Other", "--json"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [(e["eventName"], e["userIdentity"]["userName"]) for e in lines] == [
        ("Other", "paging-user")]
    table = CliRunner().invoke(main, ["audit", "lookup", "--config", str(cfg), "--user",
                                      "paging-user"])
    assert len(table.stdout.splitlines()) == 3 and "198.51.100.7" in table.stdout




def test_third_party_verifies_a_copy_with_keys_from_the_server(trail_idp: LiveIdp,
                                                               tmp_path: Path) -> None:
    """Someone without the audit key folder verifies a copy of the trail with the keys the
    server publishes at ``/audit/keys``."""
    import shutil

    seed(trail_idp, 3)
    trail_idp.components.auditor.sink.inner.roll()  # type: ignore[attr-defined]
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "trail", copy)
    cfg = tmp_path / "third-party.yaml"
    cfg.write_text(json.dumps({
        "issuer": "http://127.0.0.1:8000", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": "users.yaml"}},
        "audit": {"sink": "trail", "dir": str(copy), "keys_dir": str(tmp_path / "none")}}))
    args = ["audit", "verify", "--config", str(cfg), "--quiet"]
    assert CliRunner().invoke(main, args).exit_code == 1  # no keys: every digest unverifiable
    ok = CliRunner().invoke(main, [*args, "--keys", trail_idp.url + "/audit/keys"])
    assert ok.exit_code == 0, ok.output
    log = next(copy.glob("logs/*/*.jsonl"))
    log.write_bytes(log.read_bytes().replace(b"paging-user", b"paging-usex", 1))
    bad = CliRunner().invoke(main, [*args, "--keys", trail_idp.url + "/audit/keys"])
    assert bad.exit_code == 1 and bad.stdout.startswith("modified")
