"""The AWS tools unchanged on a profile written by ``idp configure``: boto3 and the AWS CLI
through ``credential_process``, botocore's own parser of that output, ``idp exec`` and its
``--server`` endpoint read by boto3's container provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.credentials
import botocore.session
import pytest
from playwright.sync_api import Browser

from tests.client.kit import ClientEnv
from tests.client.test_login_live import ACCT, DEV, RO, browser_login, cenv
from tests.fixtures.live import LiveIdp

pytestmark = pytest.mark.browser
__all__ = ["cenv"]  # fixtures
AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture
def signed_in(demo_idp: LiveIdp, chromium: Browser, cenv: ClientEnv) -> ClientEnv:
    browser_login(cenv, demo_idp, chromium, "bob", "--role", DEV)
    for name, role in (("dev", DEV), ("ro", RO)):
        r = cenv.run("configure", "--profile", name, "--issuer", demo_idp.url, "--client-id",
                     "demo-cli", "--role", role, "--region", "us-east-1")
        assert r.returncode == 0, r.stderr
    return cenv


def test_configure_writes_a_credential_process_profile_and_keeps_other_sections(
        demo_idp: LiveIdp, cenv: ClientEnv) -> None:
    config = cenv.root / "aws" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("# mine\n[profile other]\nregion = eu-west-1\n")
    for _ in range(2):  # twice: the section is replaced, not repeated
        assert cenv.run("configure", "--profile", "dev", "--issuer", demo_idp.url,
                        "--role", DEV, "--region", "us-east-1").returncode == 0
    text = config.read_text()
    assert text.startswith("# mine\n[profile other]\nregion = eu-west-1\n")
    assert text.count("[profile dev]") == 1
    assert "credential_process = " in text and "credentials --profile dev" in text


def test_boto3_uses_the_profile_two_roles_one_login(demo_idp: LiveIdp,
                                                    signed_in: ClientEnv,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in signed_in.env.items():
        monkeypatch.setenv(k, v)
    for name, role in (("dev", "Developer"), ("ro", "ReadOnly")):
        sts = boto3.Session(profile_name=name).client("sts", endpoint_url=demo_idp.url + "/sts")
        assert sts.get_caller_identity()["Arn"] == \
            f"arn:aws:sts::{ACCT}:assumed-role/{role}/bob"


def test_aws_cli_get_caller_identity_with_the_profile(demo_idp: LiveIdp,
                                                      signed_in: ClientEnv) -> None:
    r = subprocess.run([AWS, "sts", "get-caller-identity", "--profile", "ro", "--endpoint-url",
                        demo_idp.url + "/sts", "--output", "json"], env=signed_in.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/bob"


def test_botocore_parses_our_credential_process_output(signed_in: ClientEnv,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in signed_in.env.items():
        monkeypatch.setenv(k, v)
    out = json.loads(signed_in.run("credentials", "--profile", "dev").stdout)
    assert set(out) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken",
                        "Expiration"}
    session = botocore.session.Session(profile="dev")
    provider = botocore.credentials.ProcessProvider(
        "dev", lambda: session.full_config)
    creds = provider.load()
    assert creds is not None and creds.method == "custom-process"
    frozen = creds.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        out["AccessKeyId"], out["SecretAccessKey"], out["SessionToken"])
    expiry = creds._expiry_time  # botocore parsed our Expiration
    assert expiry is not None and expiry.isoformat().startswith(out["Expiration"][:19])


def test_exec_passes_role_credentials_in_the_environment(demo_idp: LiveIdp,
                                                         signed_in: ClientEnv) -> None:
    code = ("import boto3,sys; print(boto3.client('sts', region_name='us-east-1', "
            f"endpoint_url='{demo_idp.url}/sts').get_caller_identity()['Arn'])")
    r = signed_in.run("exec", "--profile", "ro", "--", sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/bob"


def test_exec_server_serves_boto3_container_provider_on_loopback_with_a_token(
        demo_idp: LiveIdp, signed_in: ClientEnv) -> None:
    code = f"""
import os, urllib.request, urllib.error, boto3
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
assert uri.startswith("http://127.0.0.1:") and "AWS_ACCESS_KEY_ID" not in os.environ
try:
    urllib.request.urlopen(urllib.request.Request(uri, headers={{"Authorization": "wrong"}}))
    raise SystemExit("served without the token")
except urllib.error.HTTPError as e:
    assert e.code == 403
s = boto3.Session()
assert s.get_credentials().method == "container-role"
print(s.client("sts", region_name="us-east-1",
               endpoint_url="{demo_idp.url}/sts").get_caller_identity()["Arn"])
"""
    r = signed_in.run("exec", "--profile", "dev", "--server", "--", sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"arn:aws:sts::{ACCT}:assumed-role/Developer/bob"


def test_exec_without_login_and_without_terminal_fails_before_running_the_command(
        demo_idp: LiveIdp, cenv: ClientEnv) -> None:
    assert cenv.run("configure", "--profile", "p", "--issuer", demo_idp.url,
                    "--role", DEV).returncode == 0
    r = cenv.run("exec", "--profile", "p", "--", sys.executable, "-c", "print('ran')")
    assert r.returncode == 3 and "ran" not in r.stdout
