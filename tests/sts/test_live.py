"""Must-show: the real boto3 against a live IdP — SAML from the IdP (IdP-initiated to
``urn:amazon:webservices``), an ID token from the OIDC provider, role chaining, a session policy
enforced by the decision endpoint, presigned requests, the federation page and ``/iam``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from idp.sts import DecisionClient
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.sts.conftest import USER_KEY
from tests.sts.live import _hidden, chaining_config, id_token, login, saml_response, sts_client

ACCT = "111122223333"
PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:role/{name}"


@pytest.fixture
def idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    port = free_port()
    with live_idp(chaining_config(port, demo_keys_dir, tmp_path / "metadata"), demo=True,
                  port=port) as i:
        yield i


def saml_creds(idp: LiveIdp, user: str, role_name: str, **kw: Any) -> dict[str, Any]:
    saml = saml_response(login(idp.url, user), idp.url)
    out = sts_client(idp.url).assume_role_with_saml(RoleArn=role(role_name),
                                                    PrincipalArn=PROVIDER, SAMLAssertion=saml,
                                                    **kw)
    return dict(out["Credentials"]) | {"Arn": out["AssumedRoleUser"]["Arn"]}


def test_demo_saml_to_caller_identity(demo_idp: LiveIdp) -> None:
    """The demo as shipped: bob (engineering) → Developer → GetCallerIdentity."""
    saml = saml_response(login(demo_idp.url, "bob"), demo_idp.url)
    out = sts_client(demo_idp.url).assume_role_with_saml(
        RoleArn=role("Developer"), PrincipalArn=PROVIDER, SAMLAssertion=saml)
    session = out["Subject"] and out["AssumedRoleUser"]["Arn"].rsplit("/", 1)[1]
    who = sts_client(demo_idp.url, out["Credentials"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/Developer/{session}"
    assert who["Account"] == ACCT
    with pytest.raises(ClientError) as replay:
        sts_client(demo_idp.url).assume_role_with_saml(
            RoleArn=role("Developer"), PrincipalArn=PROVIDER, SAMLAssertion=saml)
    assert replay.value.response["Error"]["Code"] == "InvalidIdentityToken"
    events = [e for e in demo_idp.audit.records if e["eventName"] == "AssumeRoleWithSAML"]
    assert [bool(e.get("errorCode")) for e in events] == [False, True]


def test_demo_web_identity(demo_idp: LiveIdp) -> None:
    token = id_token(login(demo_idp.url, "bob"), demo_idp.url)
    out = sts_client(demo_idp.url).assume_role_with_web_identity(
        RoleArn=role("Developer"), RoleSessionName="bob-cli", WebIdentityToken=token)
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/Developer/bob-cli"
    assert out["Audience"] == "demo-cli"
    who = sts_client(demo_idp.url, out["Credentials"]).get_caller_identity()
    assert who["Arn"].endswith("assumed-role/Developer/bob-cli")


def test_role_chaining(idp: LiveIdp) -> None:
    dev = saml_creds(idp, "bob", "Developer")
    client = sts_client(idp.url, dev)
    out = client.assume_role(RoleArn=role("ReadOnly"), RoleSessionName="chained")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/chained"
    with pytest.raises(ClientError) as too_long:
        client.assume_role(RoleArn=role("ReadOnly"), RoleSessionName="c2",
                           DurationSeconds=7200)
    assert too_long.value.response["Error"]["Code"] == "ValidationError"
    who = sts_client(idp.url, out["Credentials"]).get_caller_identity()
    assert who["Arn"].endswith("assumed-role/ReadOnly/chained")
    sess = idp.components.extras["sts"].credentials.peek(out["Credentials"]["AccessKeyId"])
    assert sess.chained and sess.expires - sess.issued == 3600
    assert dict(sess.tags) == {"username": "bob"}  # transitive from the SAML session


def _signed_s3_put(creds: dict[str, Any]) -> tuple[str, str, str, dict[str, str], bytes]:
    url = "http://storage.example.org/bucket/report.csv"
    req = AWSRequest(method="PUT", url=url, data=b"a,b\n1,2\n")
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"],
                          creds["SessionToken"]), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items()) | {"Host": "storage.example.org"}
    return req.method, urlsplit(url).path, "", headers, bytes(req.body)


def test_session_policy_narrows_admin(idp: LiveIdp) -> None:
    read_only = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                 '"Action":["s3:Get*","s3:List*"],"Resource":"*"}]}')
    full = saml_creds(idp, "alice", "Admin")
    narrowed = saml_creds(idp, "alice", "Admin", Policy=read_only)
    client = DecisionClient(idp.url, client_id="demo-service",
                            client_secret="demo-service-secret")
    resource = "arn:aws:s3:::bucket/report.csv"
    allowed = client.decide(*_signed_s3_put(full), action="s3:PutObject", resource=resource)
    denied = client.decide(*_signed_s3_put(narrowed), action="s3:PutObject", resource=resource)
    assert allowed.allowed and allowed.principal == full["Arn"]
    assert not denied.allowed and denied.encoded_message
    assert "session" in denied.reason
    decoded = sts_client(idp.url, full).decode_authorization_message(
        EncodedMessage=denied.encoded_message)
    assert '"action":"s3:PutObject"' in decoded["DecodedMessage"]


def test_presigned_and_session_token(idp: LiveIdp) -> None:
    user = sts_client(idp.url, {"AccessKeyId": USER_KEY.access_key_id,
                                "SecretAccessKey": USER_KEY.secret_access_key})
    out = user.get_session_token(DurationSeconds=900)
    client = sts_client(idp.url, out["Credentials"])
    assert client.get_caller_identity()["Arn"] == USER_KEY.principal_arn
    url = client.generate_presigned_url("get_caller_identity", ExpiresIn=60)
    r = requests.get(url)
    assert r.status_code == 200 and USER_KEY.principal_arn in r.text
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    r = requests.get(tampered)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    info = client.get_access_key_info(AccessKeyId=out["Credentials"]["AccessKeyId"])
    assert info["Account"] == ACCT


def test_federation_page(idp: LiveIdp) -> None:
    s = login(idp.url, "alice")
    saml = saml_response(s, idp.url)
    page = s.post(idp.url + "/federation/saml", data={"SAMLResponse": saml})
    assert page.status_code == 200 and role("Admin") in page.text and role("ReadOnly") in page.text
    creds_page = s.post(idp.url + "/federation/saml", data={
        "SAMLResponse": saml, "role": role("ReadOnly"),
        "csrf_token": _hidden(page.text, "csrf_token")})
    assert creds_page.status_code == 200, creds_page.text[:500]
    text = creds_page.text
    assert "export AWS_ACCESS_KEY_ID=ASIA" in text and "aws_session_token = " in text
    import re

    values = dict(re.findall(r"export (AWS_\w+)=(\S+)", text))
    who = sts_client(idp.url, {"AccessKeyId": values["AWS_ACCESS_KEY_ID"],
                               "SecretAccessKey": values["AWS_SECRET_ACCESS_KEY"],
                               "SessionToken": values["AWS_SESSION_TOKEN"]}).get_caller_identity()
    assert who["Arn"].startswith(f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/")
    again = s.post(idp.url + "/federation/saml", data={
        "SAMLResponse": saml, "role": role("Admin"),
        "csrf_token": _hidden(page.text, "csrf_token")})
    assert again.status_code == 400 and "already been used" in again.text


def test_federation_page_refuses_forged_form(idp: LiveIdp) -> None:
    s = login(idp.url, "alice")
    saml = saml_response(s, idp.url)
    r = s.post(idp.url + "/federation/saml", data={"SAMLResponse": saml,
                                                   "role": role("Admin"), "csrf_token": "x"})
    assert r.status_code == 403
    assert not any(e["eventName"] == "AssumeRoleWithSAML" and not e.get("errorCode")
                   for e in idp.audit.records)


def test_iam_endpoint(idp: LiveIdp) -> None:
    admin = saml_creds(idp, "alice", "Admin")
    got = sts_client(idp.url, admin, "iam").get_role(RoleName="Developer")
    assert got["Role"]["Arn"] == role("Developer")
    dev = saml_creds(idp, "bob", "Developer")
    with pytest.raises(ClientError) as denied:
        sts_client(idp.url, dev, "iam").get_role(RoleName="Admin")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    bad = dict(admin, SecretAccessKey="x" * 40)
    with pytest.raises(ClientError) as forged:
        sts_client(idp.url, bad, "iam").list_roles()
    assert forged.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def _aws(idp: LiveIdp, *args: str, creds: dict[str, Any] | None = None) -> dict[str, Any]:
    import json
    import os
    import subprocess
    import sys

    aws = Path(sys.executable).parent / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
    if creds:
        env.update({"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": creds["SessionToken"]})
    done = subprocess.run([str(aws), *args, "--endpoint-url", idp.url + "/sts",
                           "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_aws_cli(demo_idp: LiveIdp) -> None:
    """The AWS CLI, unpatched: assume-role-with-saml, then get-caller-identity."""
    saml = saml_response(login(demo_idp.url, "bob"), demo_idp.url)
    out = _aws(demo_idp, "sts", "assume-role-with-saml", "--role-arn", role("Developer"),
               "--principal-arn", PROVIDER, "--saml-assertion", saml)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    who = _aws(demo_idp, "sts", "get-caller-identity", creds=creds)
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]
    assert who["Arn"].startswith(f"arn:aws:sts::{ACCT}:assumed-role/Developer/")


def test_aws_cli_web_identity_and_chaining(idp: LiveIdp) -> None:
    """The AWS CLI: an ID token → assume-role-with-web-identity → assume-role (chaining)."""
    token = id_token(login(idp.url, "bob"), idp.url)
    web = _aws(idp, "sts", "assume-role-with-web-identity", "--role-arn", role("Developer"),
               "--role-session-name", "bob-cli", "--web-identity-token", token)
    assert web["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/Developer/bob-cli"
    chained = _aws(idp, "sts", "assume-role", "--role-arn", role("ReadOnly"),
                   "--role-session-name", "bob-ro", creds=web["Credentials"])
    who = _aws(idp, "sts", "get-caller-identity", creds=chained["Credentials"])
    assert who["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/ReadOnly/bob-ro"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_query_string_and_form_paths_agree(demo_idp: LiveIdp, method: str) -> None:
    """GET (Flask route) and POST form (direct WSGI path) give the same AWS XML errors."""
    params = {"Action": "Frobnicate", "Version": "2011-06-15"}
    r = (requests.get(demo_idp.url + "/sts", params=params) if method == "GET"
         else requests.post(demo_idp.url + "/sts", data=params))
    assert r.status_code == 400
    assert "<Code>InvalidAction</Code>" in r.text and r.headers["x-amzn-RequestId"]
    assert r.headers["Content-Type"].startswith("text/xml")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def _decide_raw(idp: LiveIdp, doc: dict[str, Any], **kw: Any) -> requests.Response:
    return requests.post(idp.url + "/sts/decide", json=doc, timeout=10, **kw)


def _probe(creds: dict[str, Any]) -> dict[str, Any]:
    method, path, query, headers, body = _signed_s3_put(creds)
    return {"request": {"method": method, "path": path, "query": query, "headers": headers,
                        "body_b64": base64.b64encode(body).decode()},
            "action": "s3:PutObject", "resource": "arn:aws:s3:::bucket/report.csv"}


@pytest.mark.parametrize("how", ["no credentials", "wrong secret", "unknown client",
                                 "public client", "secret in the body of a basic client"])
def test_decide_answers_only_an_authenticated_resource_server(idp: LiveIdp, how: str) -> None:
    """RFC 7662 §2.1, applied to the decision endpoint: whoever saw a signed request on the way
    must not learn what its signer may do.  Each refusal is a 401 ``invalid_client`` with no
    decision, principal or policy in it, and is audited."""
    doc = _probe(saml_creds(idp, "alice", "Admin"))
    auth: tuple[str, str] | None = None
    if how == "wrong secret":
        auth = ("demo-service", "not-the-secret")
    elif how == "unknown client":
        auth = ("nobody", "demo-service-secret")
    elif how == "public client":
        doc["client_id"] = "demo-cli"
    elif how == "secret in the body of a basic client":
        doc |= {"client_id": "demo-service", "client_secret": "demo-service-secret"}
    r = _decide_raw(idp, doc, auth=auth)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    assert not {"decision", "principal", "evaluation"} & set(r.json())
    refused = [e for e in idp.audit.records if e["eventName"] == "Decide"]
    assert refused and refused[-1]["errorCode"] == "invalid_client"


def test_decide_for_an_authenticated_resource_server(idp: LiveIdp) -> None:
    """The same request with the resource server's client credentials gets its decision, and
    a deny names that resource server in the audit record."""
    creds = saml_creds(idp, "bob", "ReadOnly")
    r = _decide_raw(idp, _probe(creds), auth=("demo-service", "demo-service-secret"))
    assert r.status_code == 200 and r.json()["decision"] == "Deny"
    assert r.json()["principal"] == creds["Arn"]
    denied = [e for e in idp.audit.records if e["eventName"] == "Decide"]
    assert denied[-1]["additionalEventData"]["resourceServer"] == "demo-service"


def test_boto3_signing_for_another_region_is_refused(demo_idp: LiveIdp) -> None:
    """An unmodified boto3 client with ``region_name`` other than ``sts.region`` (us-east-1)
    gets AWS's answer for a scope of another region: 403 ``SignatureDoesNotMatch``."""
    sts = boto3.client("sts", endpoint_url=f"{demo_idp.url}/sts", region_name="eu-west-1",
                       aws_access_key_id=USER_KEY.access_key_id,
                       aws_secret_access_key=USER_KEY.secret_access_key)
    with pytest.raises(ClientError) as refused:
        sts.get_caller_identity()
    error = refused.value.response["Error"]
    assert error["Code"] == "SignatureDoesNotMatch"
    assert "Credential should be scoped to a valid region" in error["Message"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
