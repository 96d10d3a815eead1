"""Workloads: a confidential client mapped to roles like a group; its client-credentials token
(``idp token --write``) is the web identity token file boto3's own provider uses, accepted only
for the roles mapped to that client, by a default trust policy that names it (``sub``)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from idp.config import parse_config
from idp.demo import USERS_FILE
from idp.iam.model import OidcProvider, trust_policy_for
from tests.client.kit import ClientEnv
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port

ACCT = "111122223333"


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:role/{name}"


@pytest.fixture(scope="module")
def signer_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("key") / "signer.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    jwk = ECKey.import_key(key.public_key()).as_dict()
    return path, {"keys": [{**jwk, "kid": "signer-1", "alg": "ES256", "use": "sig"}]}


@pytest.fixture(scope="module")
def idp(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory,
        signer_key: tuple[Path, dict[str, object]]) -> Iterator[LiveIdp]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    read = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:Get*", "iam:GetRole"], "Resource": "*"}]}
    config = parse_config({
        "issuer": issuer, "secret_key": secrets.token_urlsafe(32),
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(demo_keys_dir), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(tmp_path_factory.mktemp("metadata"))],
        "oidc": {"clients": [
            {"client_id": "build-worker", "client_secret": "build-worker-secret",
             "grant_types": ["client_credentials"], "scopes": ["roles"]},
            {"client_id": "signer", "token_endpoint_auth_method": "private_key_jwt",
             "jwks": signer_key[1], "grant_types": ["client_credentials"],
             "scopes": ["roles"]},
        ]},
        "iam": {
            "accounts": [{"id": ACCT}],
            # access tokens carry the issuer as audience
            "oidc_providers": [{"url": issuer, "client_ids": [issuer]}],
            "roles": [{"name": n, "inline_policies": {"read": read}, "max_session_duration":
                       7200} for n in ("Deploy", "Sign", "Engineer")],
            "mapping": [{"role": "Deploy", "workloads": ["build-worker"]},
                        {"role": "Sign", "workloads": ["signer"]},
                        {"role": "Engineer", "groups": ["engineering"]}],
        },
    })
    with live_idp(config, port=port) as live:
        yield live


def _token(cenv: ClientEnv, idp: LiveIdp, out: Path, *auth: str) -> str:
    r = cenv.run("token", "--issuer", idp.url, *auth, "--write", str(out))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert out.stat().st_mode & 0o077 == 0
    return out.read_text()


def _secret_file(tmp_path: Path) -> Path:
    f = tmp_path / "secret"
    f.write_text("build-worker-secret\n")
    return f


def test_workload_token_file_used_by_boto3_web_identity_provider(idp: LiveIdp,
                                                                 tmp_path: Path) -> None:
    cenv = ClientEnv(tmp_path)
    token_file = tmp_path / "token"
    _token(cenv, idp, token_file, "--client-id", "build-worker", "--client-secret-file",
           str(_secret_file(tmp_path)))
    code = ("import boto3; s = boto3.Session(); assert s.get_credentials().method == "
            "'assume-role-with-web-identity'; print(s.client('sts').get_caller_identity()"
            "['Arn'])")
    env = {**cenv.env, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
           "AWS_ROLE_ARN": arn("Deploy"), "AWS_ROLE_SESSION_NAME": "build-1",
           "AWS_ENDPOINT_URL_STS": idp.url + "/sts", "AWS_DEFAULT_REGION": "us-east-1"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"arn:aws:sts::{ACCT}:assumed-role/Deploy/build-1"


def _assume(idp: LiveIdp, role: str, token: str) -> dict[str, object]:
    sts = boto3.client("sts", endpoint_url=idp.url + "/sts", region_name="us-east-1")
    return sts.assume_role_with_web_identity(RoleArn=arn(role), RoleSessionName="workload",
                                             WebIdentityToken=token)


@pytest.mark.parametrize("role", ["Sign", "Engineer"], ids=["another-workloads-role",
                                                              "a-peoples-role"])
def test_client_refused_a_role_it_is_not_mapped_to(idp: LiveIdp, tmp_path: Path,
                                                   role: str) -> None:
    token = _token(ClientEnv(tmp_path), idp, tmp_path / "t", "--client-id", "build-worker",
                   "--client-secret-file", str(_secret_file(tmp_path)))
    assert _assume(idp, "Deploy", token)["AssumedRoleUser"]  # its own role: yes
    with pytest.raises(ClientError) as exc:
        _assume(idp, role, token)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_private_key_jwt_workload_with_refresh_keeps_the_file(
        idp: LiveIdp, tmp_path: Path, signer_key: tuple[Path, dict[str, object]]) -> None:
    cenv = ClientEnv(tmp_path)
    out = tmp_path / "token"
    proc = subprocess.Popen([sys.executable, "-m", "idp.client", "token", "--issuer", idp.url,
                             "--client-id", "signer", "--private-key", str(signer_key[0]),
                             "--key-id", "signer-1", "--write", str(out), "--refresh"],
                            env=cenv.env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None  # still running, to renew it
        token = out.read_text()
        claims = json.loads(__import__("base64").urlsafe_b64decode(
            token.split(".")[1] + "=="))
        assert claims["sub"] == "signer" and claims["roles"] == [arn("Sign")]
        assert _assume(idp, "Sign", token)["AssumedRoleUser"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_default_trust_policy_names_the_workload_client_by_sub() -> None:
    p = OidcProvider(f"arn:aws:iam::{ACCT}:oidc-provider/idp.example.org",
                     "https://idp.example.org", ACCT, ("https://idp.example.org",))
    doc = trust_policy_for(arn("Deploy"), [], [p], [], mapped=False, workloads=["build-worker"])
    assert doc["Statement"] == [{
        "Sid": "Workloads", "Effect": "Allow", "Principal": {"Federated": p.arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {"idp.example.org:aud": ["https://idp.example.org"],
                             "idp.example.org:sub": ["build-worker"]},
            "ForAnyValue:StringEquals": {"idp.example.org:roles": arn("Deploy")}}}]


def test_get_role_shows_the_workload_statement_the_sts_enforced(idp: LiveIdp,
                                                                tmp_path: Path) -> None:
    """The workload reads its own role with GetRole (SigV4 with the credentials the STS gave
    it): the trust policy that admitted it names it by ``sub`` and the role by ``roles``."""
    token = _token(ClientEnv(tmp_path), idp, tmp_path / "t", "--client-id", "build-worker",
                   "--client-secret-file", str(_secret_file(tmp_path)))
    creds = _assume(idp, "Deploy", token)["Credentials"]
    iam = boto3.client("iam", endpoint_url=idp.url + "/iam", region_name="us-east-1",
                       aws_access_key_id=creds["AccessKeyId"],  # type: ignore[index]
                       aws_secret_access_key=creds["SecretAccessKey"],  # type: ignore[index]
                       aws_session_token=creds["SessionToken"])  # type: ignore[index]
    doc = iam.get_role(RoleName="Deploy")["Role"]["AssumeRolePolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(__import__("urllib.parse").parse.unquote(doc))
    host = idp.url.split("://", 1)[1]
    (stmt,) = doc["Statement"]
    assert stmt["Sid"] == "Workloads"
    assert stmt["Condition"]["StringEquals"][f"{host}:sub"] == ["build-worker"]
    assert stmt["Condition"]["ForAnyValue:StringEquals"][f"{host}:roles"] == arn("Deploy")


def test_model_built_from_config_gives_workload_roles_only_to_their_client(
        idp: LiveIdp) -> None:
    model = idp.components.iam
    assert model.workload_roles("build-worker") == [arn("Deploy")]
    assert model.workload_roles("signer") == [arn("Sign")]
    assert model.workload_roles("demo-cli") == []
    # a workload rule gives no person the role
    assert [g.role_arn for g in model.roles_for(["engineering"], {}, "x")] == [arn("Engineer")]
    deploy = model.role(arn("Deploy")).trust_policy.document
    assert [s.get("Sid") for s in deploy["Statement"]] == ["Workloads"]


def test_cli_doc_workload_example_builds_the_statement_it_shows() -> None:
    """docs/cli.md: its workload configuration gives exactly the trust statement it prints."""
    import re

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    block = re.search(r"```yaml\n(iam:.*?)```", text, re.S)
    shown = re.search(r"```json\n(\{\"Sid\": \"Workloads\".*?)```", text, re.S)
    assert block and shown
    data = yaml.safe_load(block.group(1))
    data["oidc"]["clients"][0]["client_secret"] = "s"
    cfg = parse_config({"issuer": "https://idp.example.org", "secret_key": "k" * 32,
                        "directory": {"type": "file", "file": {"path": "u.yaml"}},
                        "iam": {"accounts": [{"id": ACCT}], **data["iam"]},
                        "oidc": data["oidc"]}, env={})
    from idp.iam import IamModel

    model = IamModel.from_config(cfg.iam, cfg.issuer)
    doc = model.role(arn("Deploy")).trust_policy.document
    assert list(doc["Statement"]) == [json.loads(shown.group(1))]
