"""``GetCallerIdentity`` answers whatever the policies say, and the engine agrees (STS API
Reference, GetCallerIdentity: "No permissions are required to perform this operation. If an
administrator attaches a policy to your identity that explicitly denies access to the
sts:GetCallerIdentity action, you can still perform this operation.")."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.credentials import Credentials

from idp.audit import RequestInfo
from idp.iam import IamModel, Request, evaluate, parse_policy
from idp.iam.model import Role, entity_id
from idp.keys import KeyRing
from idp.sts import DecisionQuery, decide
from tests.sts.conftest import ACCT, Core, custom_model, make_core, signed_request
from tests.sts.test_sigv4 import session_creds
from tests.sts.util import creds, field

DENIED = f"arn:aws:iam::{ACCT}:role/Denied"
DENY_WHO = {"Effect": "Deny", "Action": "sts:GetCallerIdentity", "Resource": "*"}


def model_with_denied_role() -> IamModel:
    """The custom model plus a role whose own identity policy denies sts:GetCallerIdentity."""
    m = custom_model()
    trust = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
         "Action": "sts:AssumeRole"}]}, "trust", "trust")
    perms = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}, DENY_WHO]}, "identity", "Denied")
    role = Role(DENIED, "Denied", "/", ACCT, entity_id("AROA", DENIED), trust, (perms,))
    return IamModel(m.accounts.values(), [*m.roles.values(), role], m.policies.values(),
                    m.saml_providers.values(), m.oidc_providers.values(), m.mapping)


@pytest.fixture
def core(keyring: KeyRing) -> Iterator[Core]:
    yield make_core(keyring, model_with_denied_role())


def assume(core: Core, c: Credentials, role: str, **extra: str) -> Credentials:
    r = core.call({"Action": "AssumeRole", "RoleArn": role, "RoleSessionName": "who",
                   **extra}, c)
    return Credentials(*creds(r))


def who_am_i(core: Core, c: Credentials) -> str | None:
    r = core.call({"Action": "GetCallerIdentity"}, c)
    assert r.status == 200, r.body
    return field(r, "Arn")


def test_identity_policy_deny_does_not_stop_get_caller_identity(core: Core) -> None:
    denied = assume(core, session_creds(core), DENIED)
    assert who_am_i(core, denied) == f"arn:aws:sts::{ACCT}:assumed-role/Denied/who"
    engine_and_decision_endpoint_allow_with(core, denied, "sts:GetCallerIdentity")


def engine_and_decision_endpoint_allow_with(core: Core, c: Credentials, denied: str) -> None:
    session = core.svc.credentials.peek(c.access_key)
    assert session is not None
    policies = core.svc.policy_set(session)
    assert evaluate(Request.make(session.arn, "sts:GetCallerIdentity"), policies).allowed
    req = signed_request({"Version": "2011-06-15", "Action": "GetCallerIdentity"}, c)
    q = DecisionQuery(req.method, req.path, req.query, dict(req.headers), req.body,
                      "sts:GetCallerIdentity")
    assert decide(core.svc, q, RequestInfo())["decision"] == "Allow"
    # the same policies still deny a neighbouring action that the deny names
    if denied != "sts:GetCallerIdentity":
        assert evaluate(Request.make(session.arn, denied), policies).response == \
            "ExplicitlyDenied"


def test_session_policy_deny_does_not_stop_get_caller_identity(core: Core) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:*", "Resource": "*"}]})
    narrowed = assume(core, session_creds(core), f"arn:aws:iam::{ACCT}:role/Admin",
                      Policy=policy)
    assert who_am_i(core, narrowed) == f"arn:aws:sts::{ACCT}:assumed-role/Admin/who"
    engine_and_decision_endpoint_allow_with(core, narrowed, "sts:GetSessionToken")


def test_revoked_session_still_gets_its_identity(core: Core) -> None:
    dev = session_creds(core)
    core.svc.credentials.revoke_role_sessions(f"arn:aws:iam::{ACCT}:role/Developer",
                                              int(core.clock.t) + 1)
    assert who_am_i(core, dev) == f"arn:aws:sts::{ACCT}:assumed-role/Developer/alice"
    req = signed_request({"Version": "2011-06-15", "Action": "GetCallerIdentity"}, dev)
    ask = DecisionQuery(req.method, req.path, req.query, dict(req.headers), req.body,
                        "sts:GetCallerIdentity")
    assert decide(core.svc, ask, RequestInfo())["decision"] == "Allow"
    other = DecisionQuery(req.method, req.path, req.query, dict(req.headers), req.body,
                          "s3:GetObject", "arn:aws:s3:::bucket/key")
    assert decide(core.svc, other, RequestInfo())["reason"] == "session revoked"
