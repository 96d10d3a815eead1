"""Helpers for the live tests: a browser-less user who signs in, gets a SAML response from
IdP-initiated SSO and an ID token from the authorization code flow (PKCE)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import requests

from idp.config import Config, parse_config
from idp.demo import USERS_FILE
from tests.sts.conftest import ACCT, READ_ONLY_DOC, USER_KEY


def _hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no `{name}` field in the page"
    return html.unescape(m.group(1))


def login(url: str, user: str) -> requests.Session:
    s = requests.Session()
    page = s.get(url + "/login").text
    r = s.post(url + "/login", data={"username": user, "password": f"{user}-password",
                                     "csrf_token": _hidden(page, "csrf_token"),
                                     "next": "/account"})
    assert r.status_code == 200 and r.url.endswith("/account"), r.status_code
    return s


def saml_response(s: requests.Session, url: str) -> str:
    """IdP-initiated SSO to the built-in AWS-style SP: the auto-posted SAMLResponse."""
    r = s.get(url + "/saml/idp-initiated", params={"sp": "urn:amazon:webservices"})
    assert r.status_code == 200, r.text[:500]
    assert 'action="' + url + '/federation/saml"' in r.text
    return _hidden(r.text, "SAMLResponse")


def id_token(s: requests.Session, url: str) -> str:
    """Authorization code flow with PKCE for ``demo-cli`` (RFC 8252 loopback redirect)."""
    verifier = secrets.token_urlsafe(40)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/callback"
    r = s.get(url + "/oauth2/authorize", params={
        "client_id": "demo-cli", "response_type": "code", "redirect_uri": redirect,
        "scope": "openid email roles", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "st", "nonce": secrets.token_urlsafe(8)},
        allow_redirects=False)
    if r.status_code == 200 and 'name="resume"' in r.text:
        r = s.post(url + "/oauth2/authorize", allow_redirects=False, data={
            "csrf_token": _hidden(r.text, "csrf_token"), "resume": _hidden(r.text, "resume"),
            "decision": "allow"})
    loc = r.headers.get("Location")
    if loc is None:
        m = re.search(r'href="([^"]+)" id="continue-link"', r.text)
        assert m, r.text[:500]
        loc = html.unescape(m.group(1))
    code = parse_qs(urlsplit(loc).query)["code"][0]
    t = requests.post(url + "/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
        "client_id": "demo-cli", "code_verifier": verifier})
    assert t.status_code == 200, t.text
    return str(t.json()["id_token"])


def sts_client(url: str, creds: dict[str, Any] | None = None, service: str = "sts") -> Any:
    if creds is None:  # federated calls are unsigned; botocore still wants some credentials
        return boto3.client(service, endpoint_url=f"{url}/{service}", region_name="us-east-1",
                            aws_access_key_id="unused", aws_secret_access_key="unused")
    return boto3.client(service, endpoint_url=f"{url}/{service}", region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds.get("SessionToken"))


def _role(name: str, perm: dict[str, Any], max_duration: int = 3600) -> dict[str, Any]:
    return {"name": name, "max_session_duration": max_duration,
            "trust_policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow",
                 "Principal": {"Federated": f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"},
                 "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession",
                            "sts:SetSourceIdentity"]},
                {"Effect": "Allow", "Principal": {"Federated": "OIDC"},
                 "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]},
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                 "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}]},
            "inline_policies": {"access": {"Version": "2012-10-17", "Statement": [perm]}}}


def chaining_config(port: int, keys_dir: Path, metadata_dir: Path) -> Config:
    """The demo, with roles that also trust the account (role chaining) and a user key."""
    issuer = f"http://127.0.0.1:{port}"
    roles = [
        _role("Admin", {"Effect": "Allow", "Action": "*", "Resource": "*"}),
        _role("Developer", {"Effect": "Allow", "Action": ["s3:*", "sts:*"], "Resource": "*"},
              14400),
        _role("ReadOnly", {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
                           "Resource": "*"}, 43200),
    ]
    oidc_arn = f"arn:aws:iam::{ACCT}:oidc-provider/127.0.0.1:{port}"
    for r in roles:
        r["trust_policy"]["Statement"][1]["Principal"]["Federated"] = oidc_arn
    tags = {"username": "${username}"}
    return parse_config({
        "issuer": issuer, "secret_key": secrets.token_urlsafe(32),
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(keys_dir), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(metadata_dir)],
        "iam": {
            "accounts": [{"id": ACCT, "alias": "demo"}],
            "saml_providers": [{"name": "demo-idp"}],
            "oidc_providers": [{"url": issuer, "client_ids": ["demo-cli", "demo-web"]}],
            "policies": [{"name": "ReadOnlyAccess", "document": READ_ONLY_DOC}],
            "roles": roles,
            "mapping": [
                {"role": "Admin", "groups": ["admins"], "principal_tags": tags,
                 "transitive_tag_keys": ["username"]},
                {"role": "Developer", "groups": ["engineering"], "principal_tags": tags,
                 "transitive_tag_keys": ["username"]},
                {"role": "ReadOnly", "everyone": True, "principal_tags": tags}],
        },
        "sts": {"access_keys": [{"access_key_id": USER_KEY.access_key_id,
                                 "secret_access_key": USER_KEY.secret_access_key,
                                 "principal_arn": USER_KEY.principal_arn}]},
    })
