"""``idp mock-s3`` (the real command, in its own process) with boto3 and the AWS CLI: SigV4
checked with this IdP's STS credentials, every call authorized by its decision endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from idp.testing import Credentials, IdpServer
from idp.testing.mock_s3 import decode_aws_chunked
from tests.fixtures.servers import free_port, wait_for_port

BIN = Path(sys.executable).parent


@pytest.fixture
def mock_s3(idp_server: IdpServer) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "idp"), "mock-s3", "--issuer", idp_server.url,
                             "--port", str(port), "--bucket", "data"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def s3(url: str, creds: Credentials) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", **creds.boto3())


def _code(call: Any, **kw: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def _seed(idp: IdpServer, url: str) -> None:
    s3(url, idp.sts_credentials("bob", "Developer")).put_object(
        Bucket="data", Key="report.txt", Body=b"quarterly numbers")


def test_boto3_read_only_role_gets_the_object_and_is_refused_the_put(
        idp_server: IdpServer, mock_s3: str) -> None:
    _seed(idp_server, mock_s3)
    reader = s3(mock_s3, idp_server.sts_credentials("carol", "ReadOnly"))
    assert reader.get_object(Bucket="data", Key="report.txt")["Body"].read() == \
        b"quarterly numbers"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket="data")["Contents"]] == \
        ["report.txt"]
    assert _code(reader.put_object, Bucket="data", Key="new.txt", Body=b"x") == \
        ("AccessDenied", 403)
    assert _code(reader.delete_object, Bucket="data", Key="report.txt") == ("AccessDenied", 403)


def test_aws_cli_cp_reads_and_is_refused_the_upload(idp_server: IdpServer, mock_s3: str,
                                                    tmp_path: Path) -> None:
    _seed(idp_server, mock_s3)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           **idp_server.sts_credentials("carol", "ReadOnly").env()}
    aws = [str(BIN / "aws"), "--endpoint-url", mock_s3, "s3"]
    down = subprocess.run([*aws, "cp", "s3://data/report.txt", "-"], env=env,
                          capture_output=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert down.stdout == b"quarterly numbers"
    (tmp_path / "up.txt").write_text("not allowed")
    up = subprocess.run([*aws, "cp", str(tmp_path / "up.txt"), "s3://data/up.txt"], env=env,
                        capture_output=True, timeout=60)
    assert up.returncode != 0 and b"AccessDenied" in up.stderr


def test_session_policy_holds_end_to_end(idp_server: IdpServer, mock_s3: str) -> None:
    read_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]})
    _seed(idp_server, mock_s3)
    dev = s3(mock_s3, idp_server.sts_credentials("bob", "Developer", policy=read_only))
    assert dev.get_object(Bucket="data", Key="report.txt")["Body"].read()
    assert _code(dev.put_object, Bucket="data", Key="x", Body=b"x") == ("AccessDenied", 403)


def test_a_wrong_secret_is_signature_does_not_match(idp_server: IdpServer,
                                                    mock_s3: str) -> None:
    good = idp_server.sts_credentials("bob", "Developer")
    forged = Credentials(good.access_key_id, "x" * 40, good.session_token, good.expiration,
                         good.assumed_role_arn)
    assert _code(s3(mock_s3, forged).list_objects_v2, Bucket="data") == \
        ("SignatureDoesNotMatch", 403)


def test_expired_credentials_are_expired_token(idp_server: IdpServer, mock_s3: str) -> None:
    expired = idp_server.sts_credentials("bob", "Developer", preset="expired")
    assert _code(s3(mock_s3, expired).list_objects_v2, Bucket="data")[0] == "ExpiredToken"


def test_anonymous_requests_are_access_denied(mock_s3: str) -> None:
    resp = requests.get(mock_s3 + "/data/report.txt", timeout=5)
    assert resp.status_code == 403 and b"<Code>AccessDenied</Code>" in resp.content


def test_every_call_is_decided_by_the_idp(idp_server: IdpServer, mock_s3: str) -> None:
    _seed(idp_server, mock_s3)
    decided = idp_server.requests("sts_decide")
    assert len(decided) == 1 and decided[0].status == 200
    assert decided[0].headers["Authorization"] == "Basic ***"


def test_aws_chunked_bodies_are_decoded() -> None:
    body = b"5;chunk-signature=ab\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:x\r\n\r\n"
    assert decode_aws_chunked(body) == b"hello world"
