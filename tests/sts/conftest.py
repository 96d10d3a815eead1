"""Fixtures of the STS tests: the core on a memory store with a pinned clock, signing helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from idp.audit import Auditor, MemorySink
from idp.iam import IamModel, demo_model
from idp.keys import KeyRing, init_keys
from idp.store.memory import MemoryStore
from idp.sts import LongTermKey, QueryRequest, Result, StsService, StsSettings, build_request

ISSUER = "http://127.0.0.1:8000"
USER_KEY = LongTermKey("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       "arn:aws:iam::111122223333:user/ops", "AIDAOPSEXAMPLE00000")


@dataclass
class Clock:
    t: float

    def __call__(self) -> float:
        return self.t


@dataclass
class Core:
    svc: StsService
    store: MemoryStore
    sink: MemorySink
    clock: Clock
    keys: KeyRing

    def call(self, params: Mapping[str, str], creds: Credentials | None = None,
             *, presign: bool = False, tamper: Callable[[QueryRequest], QueryRequest] | None
             = None) -> Result:
        full = {"Version": "2011-06-15", **params}
        req = signed_request(full, creds, presign=presign) if creds else build_request(
            "POST", "/sts", "", {"content-type": "application/x-www-form-urlencoded"},
            urlencode(full).encode())
        if tamper is not None:
            req = tamper(req)
        return self.svc.handle(req)

    def stored_sessions(self) -> int:
        return sum(1 for k in self.store._data if k.startswith("idp:sts:"))


def signed_request(params: Mapping[str, str], creds: Credentials, *, presign: bool = False,
                   service: str = "sts", path: str = "/sts",
                   region: str = "us-east-1") -> QueryRequest:
    """Sign with botocore's own signer, then turn it into what the web layer would build."""
    url = ISSUER + path
    if presign:
        aws = AWSRequest(method="GET", url=url + "?" + urlencode(params))
        SigV4QueryAuth(creds, service, region, expires=300).add_auth(aws)
    else:
        aws = AWSRequest(method="POST", url=url, data=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(creds, service, region).add_auth(aws)
    parts = urlsplit(aws.url)
    headers = {k.lower(): v for k, v in aws.headers.items()}
    headers["host"] = parts.netloc
    body = aws.body if isinstance(aws.body, bytes) else (aws.body or "").encode()
    return build_request(aws.method, parts.path, parts.query, headers, body)


@pytest.fixture(scope="session")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    d: Path = tmp_path_factory.mktemp("sts-keys")
    init_keys(d, "127.0.0.1")
    return KeyRing.load(d)


def make_core(keyring: KeyRing, model: IamModel | None = None) -> Core:
    clock = Clock(time.time())
    store = MemoryStore()
    sink = MemorySink()
    svc = StsService(StsSettings(ISSUER), model or demo_model(ISSUER), keyring, store,
                     Auditor(sink), b"s" * 32, long_term={USER_KEY.access_key_id: USER_KEY},
                     clock=clock)
    return Core(svc, store, sink, clock, keyring)


@pytest.fixture
def core(keyring: KeyRing) -> Iterator[Core]:
    yield make_core(keyring)


ACCT = "111122223333"
SAML_PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
OIDC_PROVIDER = f"arn:aws:iam::{ACCT}:oidc-provider/127.0.0.1:8000"
READ_ONLY_ARN = f"arn:aws:iam::{ACCT}:policy/ReadOnlyAccess"
READ_ONLY_DOC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}]}


def custom_model(issuer: str = ISSUER) -> IamModel:
    """The demo account plus roles for chaining and for a trust policy that refuses."""
    from idp.iam import parse_policy
    from idp.iam.model import Account, ManagedPolicy, OidcProvider, Role, SamlProvider, entity_id

    host = issuer.split("://", 1)[1]
    saml = SamlProvider(f"arn:aws:iam::{ACCT}:saml-provider/demo-idp", "demo-idp", ACCT)
    oidc = OidcProvider(f"arn:aws:iam::{ACCT}:oidc-provider/{host}", issuer, ACCT,
                        ("demo-cli", "demo-web"))
    federated = [
        {"Effect": "Allow", "Principal": {"Federated": saml.arn},
         "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
         "Condition": {"StringEquals": {"SAML:aud": issuer + "/federation/saml"}}},
        {"Effect": "Allow", "Principal": {"Federated": oidc.arn},
         "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
         "Condition": {"StringEquals": {f"{host}:aud": ["demo-cli", "demo-web"]}}},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
         "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]},
    ]
    locked = [{"Effect": "Allow", "Principal": {"Federated": saml.arn},
               "Action": "sts:AssumeRoleWithSAML",
               "Condition": {"StringEquals": {"SAML:sub": "nobody@example.org"}}}]
    vendor = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
               "Action": "sts:AssumeRole",
               "Condition": {"StringEquals": {"sts:ExternalId": "vendor-42"}}}]
    docs = {
        "Admin": (3600, federated, {"Effect": "Allow", "Action": "*", "Resource": "*"}),
        "Developer": (14400, federated, {"Effect": "Allow", "Action": ["s3:*", "sts:*"],
                                         "Resource": "*"}),
        "ReadOnly": (43200, federated, {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
                                        "Resource": "*"}),
        "Locked": (3600, locked, {"Effect": "Allow", "Action": "*", "Resource": "*"}),
        "Vendor": (3600, vendor, {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}),
    }
    roles = []
    for name, (duration, trust, perm) in docs.items():
        arn = f"arn:aws:iam::{ACCT}:role/{name}"
        roles.append(Role(arn, name, "/", ACCT, entity_id("AROA", arn),
                          parse_policy({"Version": "2012-10-17", "Statement": trust}, "trust",
                                       "trust"),
                          (parse_policy({"Version": "2012-10-17", "Statement": [perm]},
                                        "identity", f"{name}Access"),),
                          max_session_duration=duration))
    managed = ManagedPolicy(READ_ONLY_ARN, "ReadOnlyAccess", "/",
                            parse_policy(READ_ONLY_DOC, "identity", "ReadOnlyAccess"))
    return IamModel([Account(ACCT, "demo")], roles, [managed], [saml], [oidc], [])


@pytest.fixture
def custom(keyring: KeyRing) -> Iterator[Core]:
    yield make_core(keyring, custom_model())
