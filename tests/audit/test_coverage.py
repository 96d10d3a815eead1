"""Coverage: every security-relevant action of a full session against a live IdP is an audit
event with CloudTrail's record fields, and no secret the session used reaches the trail."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from click.testing import CliRunner

from idp.cli import main
from idp.sts import DecisionClient
from tests.audit.test_lookup import cloudtrail
from tests.fixtures.live import LiveIdp
from tests.sts.live import _hidden, login, saml_response, sts_client

ACCT = "111122223333"
PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
FIELDS = ("eventVersion", "eventTime", "eventSource", "eventName", "eventID", "eventType",
          "userIdentity", "sourceIPAddress", "userAgent", "requestID", "readOnly")


def _role(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:role/{name}"


def _code_flow(s: requests.Session, url: str, used: list[str]) -> dict[str, Any]:
    """Authorization code + PKCE for ``demo-cli``: the whole token response."""
    verifier = secrets.token_urlsafe(40)
    used.append(verifier)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/callback"
    r = s.get(url + "/oauth2/authorize", params={
        "client_id": "demo-cli", "response_type": "code", "redirect_uri": redirect,
        "scope": "openid email roles offline_access", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "st", "nonce": "n0nce"},
        allow_redirects=False)
    if r.status_code == 200 and 'name="resume"' in r.text:
        r = s.post(url + "/oauth2/authorize", allow_redirects=False, data={
            "csrf_token": _hidden(r.text, "csrf_token"), "resume": _hidden(r.text, "resume"),
            "decision": "allow"})
    loc = r.headers.get("Location")
    if loc is None:
        m = re.search(r'href="([^"]+)" id="continue-link"', r.text)
        assert m, r.text[:300]
        loc = m.group(1).replace("&amp;", "&")
    code = parse_qs(urlsplit(loc).query)["code"][0]
    used.append(code)
    t = requests.post(url + "/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
        "client_id": "demo-cli", "code_verifier": verifier}, timeout=10)
    assert t.status_code == 200, t.text
    body: dict[str, Any] = t.json()
    return body


def _session(idp: LiveIdp, user: str, used: list[str]) -> requests.Session:
    s = login(idp.url, user)
    used.append(f"{user}-password")
    used.extend(c.value for c in s.cookies if c.value and len(c.value) >= 16)
    return s


def _creds(out: dict[str, Any], used: list[str]) -> dict[str, Any]:
    c = dict(out["Credentials"])
    used.extend([c["SecretAccessKey"], c["SessionToken"]])
    return c


def _full_session(idp: LiveIdp, used: list[str]) -> None:
    """Every door once, with the secrets it takes recorded in ``used``."""
    url = idp.url
    bad = "wrong-password-" + secrets.token_hex(8)
    used.append(bad)
    page = requests.get(url + "/login", timeout=10)
    requests.post(url + "/login", cookies=page.cookies, timeout=10, data={
        "username": "bob", "password": bad, "csrf_token": _hidden(page.text, "csrf_token")})
    # SAML: the IdP's response, AssumeRoleWithSAML, and its replay refused
    alice = _session(idp, "alice", used)
    saml = saml_response(alice, url)
    used.append(saml)
    used.append(base64.b64decode(saml).decode().split("SignatureValue>")[1][:60])
    admin = _creds(sts_client(url).assume_role_with_saml(
        RoleArn=_role("Admin"), PrincipalArn=PROVIDER, SAMLAssertion=saml), used)
    with pytest.raises(ClientError):
        sts_client(url).assume_role_with_saml(RoleArn=_role("Admin"), PrincipalArn=PROVIDER,
                                              SAMLAssertion=saml)
    # OIDC: code, token, refresh, introspection, revocation, web identity
    bob = _session(idp, "bob", used)
    tokens = _code_flow(bob, url, used)
    used.extend(tokens[k] for k in ("access_token", "id_token", "refresh_token"))
    used.extend(t.split(".")[2] for t in (tokens["access_token"], tokens["id_token"]))
    refreshed = requests.post(url + "/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": "demo-cli"}).json()
    used.extend([refreshed["access_token"], refreshed["refresh_token"]])
    used.append("demo-web-secret")
    seen = requests.post(url + "/oauth2/introspect", auth=("demo-web", "demo-web-secret"),
                         data={"token": refreshed["access_token"]}, timeout=10).json()
    assert seen["active"] is True
    assert requests.post(url + "/oauth2/revoke", timeout=10, data={
        "token": refreshed["refresh_token"], "client_id": "demo-cli"}).status_code == 200
    dev = _creds(sts_client(url).assume_role_with_web_identity(
        RoleArn=_role("ReadOnly"), RoleSessionName="bob-web",
        WebIdentityToken=tokens["id_token"]), used)
    # /iam, the decision endpoint's deny, a lookup, and a sign-out
    sts_client(url, admin, "iam").get_role(RoleName="Developer")
    used.append("demo-service-secret")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="PUT", url="http://storage.example.org/b/k", data=b"x")
    SigV4Auth(Credentials(dev["AccessKeyId"], dev["SecretAccessKey"], dev["SessionToken"]),
              "s3", "us-east-1").add_auth(req)
    denied = DecisionClient(url, client_id="demo-service",
                            client_secret="demo-service-secret").decide(
        "PUT", "/b/k", "", dict(req.headers.items()) | {"Host": "storage.example.org"},
        b"x", action="s3:PutObject", resource="arn:aws:s3:::b/k")
    assert not denied.allowed
    cloudtrail(idp, admin).lookup_events(MaxResults=5)
    page = alice.get(url + "/account").text
    alice.post(url + "/logout", data={"csrf_token": _hidden(page, "csrf_token")})


def _records(trail: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted(trail.glob("logs/*/*.jsonl"))
            for line in p.read_text().splitlines()]


@pytest.fixture
def session_trail(trail_idp: LiveIdp, tmp_path: Path) -> tuple[list[dict[str, Any]], list[str],
                                                               Path]:
    used: list[str] = []
    _full_session(trail_idp, used)
    trail_idp.components.auditor.close()
    return _records(tmp_path / "trail"), used, tmp_path / "trail"


def _one(records: list[dict[str, Any]], name: str, **where: Any) -> dict[str, Any]:
    found = [r for r in records if r["eventName"] == name
             and all(r.get(k) == v for k, v in where.items())]
    assert found, f"no `{name}` event {where or ''}"
    return found[0]


def test_every_action_of_a_session_is_an_event_with_cloudtrail_fields(
        session_trail: tuple[list[dict[str, Any]], list[str], Path]) -> None:
    records, _, _ = session_trail
    for r in records:
        missing = [f for f in FIELDS if f not in r]
        assert not missing, f"{r['eventName']} lacks {missing}"
    assert _one(records, "ConfigLoaded")["additionalEventData"]["configSha256"]
    assert _one(records, "Login", errorCode="FailedAuthentication")["userIdentity"][
        "userName"] == "bob"
    assert _one(records, "Login")["eventType"] == "AwsConsoleSignIn"
    saml = _one(records, "SamlAssertionIssued")["additionalEventData"]
    assert saml["serviceProvider"] == "urn:amazon:webservices" and saml["nameId"]
    assert _role("Admin") in saml["roles"]
    issued = _one(records, "AssumeRoleWithSAML")
    assert issued["resources"][0]["ARN"] == _role("Admin")
    assert issued["additionalEventData"]["accessKeyId"].startswith("ASIA")
    assert _one(records, "AssumeRoleWithSAML", errorCode="InvalidIdentityToken")
    assert _one(records, "OidcToken")["additionalEventData"]["clientId"] == "demo-cli"
    assert _one(records, "OidcRefresh")["userIdentity"]["userName"] == "bob"
    intro = _one(records, "OidcIntrospect")
    assert intro["additionalEventData"]["clientId"] == "demo-web"
    assert intro["additionalEventData"]["active"] is True
    assert intro["additionalEventData"]["subject"]
    assert _one(records, "OidcRevoke")["additionalEventData"]["kind"] == "refresh_token"
    assert _one(records, "AssumeRoleWithWebIdentity")["resources"][0]["ARN"] == \
        _role("ReadOnly")
    get_role = _one(records, "GetRole")
    assert get_role["readOnly"] is True and "errorCode" not in get_role
    assert _one(records, "Decide", errorCode="AccessDenied")["additionalEventData"][
        "action"] == "s3:PutObject"
    assert _one(records, "LookupEvents")["readOnly"] is True
    assert _one(records, "Logout")["userIdentity"]["userName"] == "alice"


def test_no_secret_of_the_session_reaches_the_trail(
        session_trail: tuple[list[dict[str, Any]], list[str], Path]) -> None:
    """Passwords, client secrets, codes, PKCE verifiers, access/ID/refresh tokens, SAML
    responses and signatures, secret access keys, session tokens and cookies: none is in
    any file of the trail (logs, digests, index)."""
    _, used, trail = session_trail
    assert len(used) >= 20
    blob = b"".join(p.read_bytes() for p in sorted(trail.rglob("*")) if p.is_file())
    leaked = [s[:12] + "…" for s in used if s.encode() in blob]
    assert leaked == []


def test_admin_cli_actions_are_audited(tmp_path: Path, audit_keys: Path) -> None:
    from idp.demo import USERS_FILE

    users = tmp_path / "users.yaml"
    users.write_text(USERS_FILE.read_text())
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(json.dumps({
        "issuer": "http://127.0.0.1:8000", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": str(users)}},
        "audit": {"sink": "trail", "dir": str(tmp_path / "trail"),
                  "keys_dir": str(audit_keys)}}))
    run = CliRunner().invoke
    secret = "n3w-" + secrets.token_hex(8)
    assert run(main, ["users", "add", "dora", "--password-stdin", "--config", str(cfg)],
               input=secret + "\n").exit_code == 0
    assert run(main, ["users", "passwd", "dora", "--password-stdin", "--config", str(cfg)],
               input=secret + "x\n").exit_code == 0
    keys = str(tmp_path / "keys")
    assert run(main, ["keys", "init", "--dir", keys, "--config", str(cfg)]).exit_code == 0
    assert run(main, ["keys", "rotate", "--dir", keys, "--config", str(cfg)]).exit_code == 0
    records = {r["eventName"]: r for r in _records(tmp_path / "trail")}
    assert sorted(records) == ["ChangeUserPassword", "CreateSigningKeys", "CreateUser",
                               "RotateSigningKeys"]
    assert all(r["userIdentity"]["type"] == "Admin" for r in records.values())
    assert records["CreateUser"]["resources"] == [{"ARN": "user/dora", "type": "IdpUser"}]
    assert secret.encode() not in b"".join(p.read_bytes() for p in
                                           (tmp_path / "trail").rglob("*.jsonl"))


def test_start_records_config_hash_and_the_keys_it_generated(tmp_path: Path) -> None:
    from idp.app import build_components
    from idp.audit.events import config_hash
    from tests.helpers import config

    cfg = config(tmp_path, tmp_path / "keys", audit={
        "sink": "trail", "dir": str(tmp_path / "trail"), "keys_dir": str(tmp_path / "ak")})
    build_components(cfg).close()
    build_components(cfg).close()  # keys exist now: nothing generated the second time
    names = sorted(r["eventName"] for r in _records(tmp_path / "trail"))
    assert names == ["ConfigLoaded", "ConfigLoaded", "CreateAuditKeys", "CreateSigningKeys"]
    loaded = [r for r in _records(tmp_path / "trail") if r["eventName"] == "ConfigLoaded"]
    assert {r["additionalEventData"]["configSha256"] for r in loaded} == {config_hash(cfg)}
    assert cfg.secret_key not in "".join(p.read_text() for p in
                                         (tmp_path / "trail").glob("logs/*/*.jsonl"))
