"""MFA through the STS: step-up on the federation page, MultiFactorAuthPresent/Age in the
credentials the decision endpoint sees, the Operator trust policy, and virtual MFA devices
with GetSessionToken / AssumeRole (SerialNumber + TokenCode)."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client

from idp.mfa import totp
from tests.helpers import config, make_app
from tests.mfa.web import login, submit_code, unused_code
from tests.sts.conftest import USER_KEY
from tests.sts.webapp import USER, aws_code, session_from, sts_call

ISSUER = "http://127.0.0.1:8000"
ACCT = "111122223333"
OPERATOR = f"arn:aws:iam::{ACCT}:role/Operator"
READ_ONLY = f"arn:aws:iam::{ACCT}:role/ReadOnly"
SAML_PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
SERIAL = f"arn:aws:iam::{ACCT}:mfa/ops-phone"
DEVICE_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
SERVICE_AUTH = ("demo-service", "demo-service-secret")


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no {name} in {page[:300]}"
    return html.unescape(m.group(1))


@pytest.fixture
def web(tmp_path: Path, demo_keys_dir: Path) -> Iterator[Any]:
    cfg = config(tmp_path, demo_keys_dir,
                 mfa={"enrolments_dir": str(tmp_path / "mfa"), "sign_in": "required",
                      "devices": [{"serial_number": SERIAL,
                                   "access_key_id": USER_KEY.access_key_id,
                                   "secret": DEVICE_SECRET}]},
                 sts={"access_keys": [{"access_key_id": USER_KEY.access_key_id,
                                       "secret_access_key": USER_KEY.secret_access_key,
                                       "principal_arn": USER_KEY.principal_arn}]})
    app, comps, sink = make_app(cfg, demo=True)
    yield app, comps, sink
    comps.close()


def federation_page(client: Any, saml_response: str, relay: str | None = None) -> str:
    data = {"SAMLResponse": saml_response, **({"RelayState": relay} if relay else {})}
    r = client.post("/federation/saml", data=data)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return str(r.get_data(as_text=True))


def idp_initiated(client: Any, query: str = "sp=urn:amazon:webservices") -> tuple[str, str]:
    r = client.get("/saml/idp-initiated?" + query)
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page[:300]
    relay = re.search(r'name="RelayState" value="([^"]*)"', page)
    return hidden(page, "SAMLResponse"), html.unescape(relay.group(1)) if relay else ""


def pick(client: Any, page: str, role: str) -> Any:
    return client.post("/federation/saml", data={
        "SAMLResponse": hidden(page, "SAMLResponse"), "role": role,
        "csrf_token": hidden(page, "csrf_token")})


def creds_of(page: str) -> Credentials:
    def f(name: str) -> str:
        m = re.search(rf"export {name}=(\S+)", page)
        assert m, name
        return m.group(1)
    return Credentials(f("AWS_ACCESS_KEY_ID"), f("AWS_SECRET_ACCESS_KEY"),
                       f("AWS_SESSION_TOKEN"))


def decide(client: Any, creds: Credentials, action: str) -> dict[str, Any]:
    aws = AWSRequest(method="GET", url="http://ec2.example.org/")
    SigV4Auth(creds, "ec2", "us-east-1").add_auth(aws)
    headers = dict(aws.headers.items()) | {"Host": "ec2.example.org"}
    body = {"request": {"method": "GET", "path": "/", "query": "", "headers": headers,
                        "body_b64": ""}, "action": action, "resource": "*"}
    auth = "Basic " + base64.b64encode(":".join(SERVICE_AUTH).encode()).decode()
    r = client.post("/sts/decide", data=json.dumps(body), base_url=ISSUER,
                    headers={"Content-Type": "application/json", "Authorization": auth})
    assert r.status_code in (200, 403), r.get_data(as_text=True)
    return dict(r.json)


def test_dave_steps_up_on_the_federation_page_and_decide_sees_mfa(web: Any) -> None:
    app, comps, sink = web
    c = app.test_client()
    assert login(c, "dave", "dave-password").headers["Location"] == "/account"  # no MFA yet
    saml, _ = idp_initiated(c)
    page = federation_page(c, saml)
    assert OPERATOR in page
    r = pick(c, page, OPERATOR)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith("/login/mfa?next=")
    r = submit_code(c, unused_code(), next_path=parse_qs(urlsplit(loc).query)["next"][0])
    assert r.status_code == 303
    back = urlsplit(r.headers["Location"])
    assert back.path == "/saml/idp-initiated"
    saml2, relay = idp_initiated(c, back.query)
    assert relay == OPERATOR
    page2 = federation_page(c, saml2, relay)
    assert re.search(rf'value="{OPERATOR}" checked', page2)
    r = pick(c, page2, OPERATOR)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    creds = creds_of(r.get_data(as_text=True))
    assert decide(c, creds, "ec2:TerminateInstances")["decision"] == "Allow"
    # the assertion without a second factor is refused by the trust policy
    r = sts_call(c, {"Action": "AssumeRoleWithSAML", "RoleArn": OPERATOR,
                     "PrincipalArn": SAML_PROVIDER, "SAMLAssertion": saml})
    assert r.status_code == 403 and aws_code(r) == "AccessDenied"


def test_same_person_without_second_factor_refused_by_trust_policy(web: Any) -> None:
    """The step-up is a convenience: the STS itself refuses Operator without MFA."""
    app, comps, _ = web
    c = app.test_client()
    login(c, "dave", "dave-password")
    saml, _ = idp_initiated(c)
    r = sts_call(c, {"Action": "AssumeRoleWithSAML", "RoleArn": OPERATOR,
                     "PrincipalArn": SAML_PROVIDER, "SAMLAssertion": saml})
    assert r.status_code == 403 and aws_code(r) == "AccessDenied"
    saml, _ = idp_initiated(c)
    r = sts_call(c, {"Action": "AssumeRoleWithSAML", "RoleArn": READ_ONLY,
                     "PrincipalArn": SAML_PROVIDER, "SAMLAssertion": saml})
    assert r.status_code == 200
    creds = session_from(r)
    assert decide(c, creds, "ec2:DescribeInstances")["decision"] == "Allow"


def test_mfa_assertion_gives_mfa_credentials_with_age(web: Any) -> None:
    app, comps, _ = web
    c = app.test_client()
    login(c, "dave", "dave-password")
    submit_code(c, unused_code())
    saml, _ = idp_initiated(c)
    r = sts_call(c, {"Action": "AssumeRoleWithSAML", "RoleArn": OPERATOR,
                     "PrincipalArn": SAML_PROVIDER, "SAMLAssertion": saml})
    assert r.status_code == 200, r.get_data(as_text=True)
    akid = session_from(r).access_key
    stored = comps.extras["sts"].credentials.peek(akid)
    assert stored.mfa and abs(stored.mfa_time - time.time()) < 5


def test_operator_trust_without_mfa_for_someone_with_operators_group_alice_unaffected(
        web: Any) -> None:
    """alice keeps signing in and taking her roles exactly as before."""
    app, _, _ = web
    c = app.test_client()
    assert login(c, "alice", "alice-password").headers["Location"] == "/account"
    saml, _ = idp_initiated(c)
    page = federation_page(c, saml)
    assert OPERATOR not in page
    r = pick(c, page, f"arn:aws:iam::{ACCT}:role/Admin")
    assert r.status_code == 200 and "AWS_ACCESS_KEY_ID" in r.get_data(as_text=True)


# -- virtual MFA devices -------------------------------------------------------------------

def gst(client: Client, **extra: str) -> Any:
    return sts_call(client, {"Action": "GetSessionToken", **extra}, USER)


def test_get_session_token_with_device_code_valid_wrong_replayed(web: Any) -> None:
    app, comps, sink = web
    c = Client(app)
    code = totp.code_at(DEVICE_SECRET, time.time())
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = gst(c, SerialNumber=SERIAL, TokenCode=wrong)
    assert r.status_code == 403 and aws_code(r) == "AccessDenied"
    assert "invalid MFA one time pass code" in r.get_data(as_text=True)
    r = gst(c, SerialNumber=SERIAL, TokenCode=code)
    assert r.status_code == 200, r.get_data(as_text=True)
    stored = comps.extras["sts"].credentials.peek(session_from(r).access_key)
    assert stored.mfa and stored.mfa_time is not None
    r = gst(c, SerialNumber=SERIAL, TokenCode=code)
    assert r.status_code == 403 and aws_code(r) == "AccessDenied"
    assert [e.get("errorCode") for e in sink.records if e["eventName"] == "MfaVerify"] == [
        "InvalidCode", None, "ReplayedCode"]


@pytest.mark.parametrize("extra", [
    pytest.param({"SerialNumber": SERIAL}, id="serial-without-code"),
    pytest.param({"TokenCode": "123456"}, id="code-without-serial"),
    pytest.param({"SerialNumber": f"arn:aws:iam::{ACCT}:mfa/other", "TokenCode": "123456"},
                 id="unknown-device"),
])
def test_get_session_token_device_misuse_is_access_denied(web: Any,
                                                          extra: dict[str, str]) -> None:
    r = gst(Client(web[0]), **extra)
    assert r.status_code == 403 and aws_code(r) == "AccessDenied"


def test_get_session_token_without_device_is_not_mfa(web: Any) -> None:
    app, comps, _ = web
    r = gst(Client(app))
    assert r.status_code == 200
    assert not comps.extras["sts"].credentials.peek(session_from(r).access_key).mfa


def test_device_lockout_after_wrong_codes(tmp_path: Path, demo_keys_dir: Path) -> None:
    cfg = config(tmp_path, demo_keys_dir,
                 mfa={"factor_failures": 2, "devices": [{
                     "serial_number": SERIAL, "access_key_id": USER_KEY.access_key_id,
                     "secret": DEVICE_SECRET}]},
                 sts={"access_keys": [{"access_key_id": USER_KEY.access_key_id,
                                       "secret_access_key": USER_KEY.secret_access_key,
                                       "principal_arn": USER_KEY.principal_arn}]})
    app, comps, sink = make_app(cfg)
    c = Client(app)
    now = time.time()
    near = {totp.code_at(DEVICE_SECRET, now + d) for d in (-30, 0, 30)}
    bad = next(x for x in (f"{i:06d}" for i in range(10)) if x not in near)
    for _ in range(2):
        assert gst(c, SerialNumber=SERIAL, TokenCode=bad).status_code == 403
    r = gst(c, SerialNumber=SERIAL, TokenCode=totp.code_at(DEVICE_SECRET, now))
    assert r.status_code == 403
    assert [e["eventName"] for e in sink.records].count("MfaLockout") == 1
    comps.close()




BREAKGLASS = f"arn:aws:iam::{ACCT}:role/Breakglass"


def test_assume_role_needing_mfa_takes_the_device_code_once(tmp_path: Path,
                                                            demo_keys_dir: Path) -> None:
    """AssumeRole with SerialNumber + TokenCode (AWS STS API reference, AssumeRole): a role
    whose trust policy requires ``aws:MultiFactorAuthPresent`` refuses the caller without a
    code, with a wrong one and with a replayed one, and takes it once with a valid one."""
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": USER_KEY.principal_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}
    cfg = config(tmp_path, demo_keys_dir,
                 iam={"accounts": [{"id": ACCT}], "roles": [{
                     "name": "Breakglass", "trust_policy": trust, "inline_policies": {
                         "all": {"Version": "2012-10-17", "Statement": [
                             {"Effect": "Allow", "Action": "*", "Resource": "*"}]}}}]},
                 mfa={"devices": [{"serial_number": SERIAL,
                                   "access_key_id": USER_KEY.access_key_id,
                                   "secret": DEVICE_SECRET}]},
                 sts={"access_keys": [{"access_key_id": USER_KEY.access_key_id,
                                       "secret_access_key": USER_KEY.secret_access_key,
                                       "principal_arn": USER_KEY.principal_arn}]})
    app, comps, _ = make_app(cfg)
    c = Client(app)

    def assume(**extra: str) -> Any:
        return sts_call(c, {"Action": "AssumeRole", "RoleArn": BREAKGLASS,
                            "RoleSessionName": "ops", **extra}, USER)

    code = totp.code_at(DEVICE_SECRET, time.time())
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = assume()
    assert r.status_code == 403 and aws_code(r) == "AccessDenied", "no code: not MFA"
    r = assume(SerialNumber=SERIAL, TokenCode=wrong)
    assert r.status_code == 403 and aws_code(r) == "AccessDenied", "wrong code"
    r = assume(SerialNumber=SERIAL, TokenCode=code)
    assert r.status_code == 200, r.get_data(as_text=True)
    stored = comps.extras["sts"].credentials.peek(session_from(r).access_key)
    assert stored.mfa and stored.mfa_time is not None
    r = assume(SerialNumber=SERIAL, TokenCode=code)
    assert r.status_code == 403 and aws_code(r) == "AccessDenied", "replayed code"
    comps.close()
