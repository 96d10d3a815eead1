"""Property: the compiled engine with its decision cache decides exactly as the uncached path.

Hypothesis generates policy sets of every type (identity, resource with ``Principal`` or
``NotPrincipal``, permissions boundary, session, SCP and RCP levels) from statements with
wildcard actions and resources, ``NotAction``/``NotResource``, conditions of every family,
``...IfExists``, ``ForAnyValue``/``ForAllValues``, ``Null`` and policy variables, plus a batch
of requests per set that repeat principals, actions and resources with varying context (so the
cache is hit with contexts that differ in keys no policy reads, and missed on those it reads).
Each request is decided by a cached set (twice: the miss, then the hit) and by a separately
parsed set with the cache off; the two ``Decision`` objects must be equal.

CI runs a fixed seed: 500 policy sets x 100 requests = 50,000 requests (about 11 s of CPU on
one core of the development machine, most of it Hypothesis generating the policy sets).
``IDP_HYPOTHESIS_PROFILE=long`` runs 10,000 sets (1,000,000 requests) from a random seed.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.iam import PolicySet, Request

ACCT, OTHER = "111122223333", "444455556666"
USER = f"arn:aws:iam::{ACCT}:user/alice"
ROLE = f"arn:aws:iam::{ACCT}:role/Dev"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/Dev/alice"
ROOT = f"arn:aws:iam::{ACCT}:root"
OTHER_SESSION = f"arn:aws:sts::{OTHER}:assumed-role/Ext/bob"
OTHER_ROLE = f"arn:aws:iam::{OTHER}:role/Ext"
SAML = f"arn:aws:iam::{ACCT}:saml-provider/corp"
PRINCIPALS = [USER, ROLE, SESSION, ROOT, OTHER_SESSION, SAML, "ec2.amazonaws.com", "*"]
ACTIONS = ["s3:GetObject", "s3:PutObject", "ec2:DescribeInstances", "iam:CreateUser",
           "sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:GetCallerIdentity"]
RESOURCES = ["arn:aws:s3:::b/alice/x", "arn:aws:s3:::b/red/x", "arn:aws:s3:::other/k",
             f"arn:aws:iam::{ACCT}:role/Target", f"arn:aws:ec2:eu-west-1:{ACCT}:instance/i-1",
             f"arn:aws:sqs:eu-west-1:{OTHER}:q", "*"]
ACCOUNTS = [None, ACCT, OTHER]
# every context key a request may carry, with the values it may take (index 0: absent)
CONTEXT: list[tuple[str, list[Any]]] = [
    ("aws:username", ["alice", "bob", "red"]),
    ("aws:PrincipalTag/team", ["red", "blue", "alice"]),
    ("s3:prefix", ["home/alice/x", "home/bob/y", "public/z"]),
    ("aws:RequestedRegion", ["eu-west-1", "us-east-1", "EU-WEST-1"]),
    ("aws:SourceIp", ["10.1.2.3", "10.2.0.1", "192.0.2.1"]),
    ("aws:SecureTransport", [True, False, "true"]),
    ("aws:MultiFactorAuthPresent", [True, False, "false"]),
    ("s3:max-keys", [10, 100, "1000"]),
    ("aws:TagKeys", [["env"], ["env", "cost"], []]),
    ("aws:CurrentTime", ["2025-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "1700000000"]),
    ("aws:PrincipalArn", [ROLE, OTHER_ROLE, USER]),
    ("saml:aud", ["https://signin.aws.amazon.com/saml", "https://evil.example/", "x"]),
]

ACTION_PATTERNS = ["*", "s3:*", "s3:Get*", "s3:?utObject", "S3:GETOBJECT", "ec2:Describe*",
                   "iam:*", "sts:AssumeRole*", "sts:*", "*:Get*"]
RESOURCE_PATTERNS = ["*", "arn:aws:s3:::b/*", "arn:aws:s3:::b/${aws:username}/*",
                     "arn:aws:s3:::b/${aws:PrincipalTag/team}/*", "arn:aws:s3:::*/x",
                     "arn:aws:iam::*:role/T*", "arn:aws:ec2:*:*:instance/*",
                     "arn:aws:s3:::b/${aws:username}${*}", "arn:aws:sqs:*:*:q"]
CONDITIONS: list[dict[str, Any]] = [
    {"StringEquals": {"aws:PrincipalTag/team": ["red", "blue"]}},
    {"StringLike": {"s3:prefix": "home/${aws:username}/*"}},
    {"StringEqualsIgnoreCase": {"aws:RequestedRegion": "eu-west-1"}},
    {"StringEqualsIfExists": {"aws:RequestedRegion": "eu-west-1"}},
    {"StringNotEquals": {"aws:username": "${aws:PrincipalTag/team}"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"NotIpAddress": {"aws:SourceIp": "10.1.0.0/16"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
    {"NumericLessThan": {"s3:max-keys": "100"}},
    {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "owner"]}},
    {"ForAllValues:StringLike": {"aws:TagKeys": ["e*", "o*"]}},
    {"Null": {"aws:PrincipalTag/team": "false"}},
    {"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
    {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/D*"}},
    {"StringEquals": {"saml:aud": "https://signin.aws.amazon.com/saml"}},
]
PRINCIPAL_ELEMENTS: list[Any] = [
    "*", {"AWS": "*"}, {"AWS": [SESSION, ROLE]}, {"AWS": [USER, ROOT]}, {"AWS": ACCT},
    {"AWS": [SESSION, ROLE, ROOT]}, {"AWS": OTHER}, {"AWS": [OTHER_SESSION, OTHER_ROLE, OTHER]},
    {"Federated": SAML}, {"Service": "ec2.amazonaws.com"},
]

PROFILES = {
    "ci": settings(max_examples=500, derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck)),
    "long": settings(max_examples=10_000, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck)),
}
PROFILE = PROFILES[os.environ.get("IDP_HYPOTHESIS_PROFILE", "ci")]
REQUESTS_PER_SET = 100
MIN_REQUESTS = 50_000


@st.composite
def statements(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    st_: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    if kind in ("resource", "rcp"):
        key = "NotPrincipal" if kind == "resource" and draw(st.booleans()) else "Principal"
        st_[key] = "*" if kind == "rcp" else draw(st.sampled_from(PRINCIPAL_ELEMENTS))
    actions = draw(st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3))
    st_["NotAction" if draw(st.integers(0, 4)) == 0 else "Action"] = actions
    resources = draw(st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2))
    st_["NotResource" if draw(st.integers(0, 4)) == 0 else "Resource"] = resources
    conditions = draw(st.lists(st.sampled_from(CONDITIONS), max_size=2))
    if conditions:
        merged: dict[str, Any] = {}
        for c in conditions:
            for op, body in c.items():
                merged.setdefault(op, {}).update(body)
        st_["Condition"] = merged
    return st_


@st.composite
def documents(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    version = draw(st.sampled_from(["2012-10-17", "2012-10-17", "2008-10-17"]))
    return {"Version": version,
            "Statement": draw(st.lists(statements(kind), min_size=1, max_size=3))}


@st.composite
def policy_sets(draw: st.DrawFn) -> dict[str, Any]:
    levels = st.lists(st.lists(documents("scp"), max_size=2), max_size=2)
    return {
        "identity": draw(st.lists(documents("identity"), max_size=2)),
        "resource": draw(st.none() | documents("resource")),
        "boundaries": draw(st.lists(documents("boundary"), max_size=1)),
        "session": draw(st.lists(documents("session"), max_size=1)),
        "scps": draw(levels),
        "rcps": draw(st.lists(st.lists(documents("rcp"), max_size=2), max_size=2)),
    }


def context_of(code: int) -> dict[str, Any]:
    """Two bits per key: absent, or one of its three values."""
    ctx = {}
    for key, values in CONTEXT:
        pick = code & 3
        code >>= 2
        if pick:
            ctx[key] = values[pick - 1]
    return ctx


# one integer per request (cheaper to generate than a tuple): the context code in the low
# bits, then the indexes of the account, resource, action and principal
CONTEXT_BITS = 2 * len(CONTEXT)
REQUEST = st.integers(0, (1 << (CONTEXT_BITS + 12)) - 1)


def request_of(code: int) -> Request:
    ctx = context_of(code & ((1 << CONTEXT_BITS) - 1))
    code >>= CONTEXT_BITS
    acct, code = code % len(ACCOUNTS), code // len(ACCOUNTS)
    res, code = code % len(RESOURCES), code // len(RESOURCES)
    action, code = code % len(ACTIONS), code // len(ACTIONS)
    return Request.make(PRINCIPALS[code % len(PRINCIPALS)], ACTIONS[action], RESOURCES[res],
                        ACCOUNTS[acct], ctx)


def decide_both(docs: dict[str, Any], raw: list[int]) -> int:
    cached = PolicySet.build(**docs, cache=True)
    uncached = PolicySet.build(**docs, cache=False)
    for code in raw:
        request = request_of(code)
        miss = cached.evaluate(request)
        hit = cached.evaluate(request)
        assert hit is miss
        assert miss == uncached.evaluate(request), (request, docs)
    return len(raw)


def test_decision_cache_agrees_with_uncached_path() -> None:
    seen = [0]

    @PROFILE
    @given(policy_sets(), st.lists(REQUEST, min_size=REQUESTS_PER_SET,
                                   max_size=REQUESTS_PER_SET))
    def check(docs: dict[str, Any], raw: list[int]) -> None:
        seen[0] += decide_both(docs, raw)

    check()
    assert seen[0] >= MIN_REQUESTS


def test_cache_is_keyed_on_every_context_key_the_policies_read() -> None:
    """A hand-made collision: the same request with a different value of a key that only a
    policy variable inside a ``NotResource`` reads must not share a cache entry."""
    docs = {"identity": [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*",
         "NotResource": "arn:aws:s3:::b/${aws:PrincipalTag/team}/*"}]}]}
    ps = PolicySet.build(**docs)
    red = Request.make(SESSION, "s3:GetObject", "arn:aws:s3:::b/red/x", None,
                       {"aws:PrincipalTag/team": "red"})
    blue = Request.make(SESSION, "s3:GetObject", "arn:aws:s3:::b/red/x", None,
                        {"aws:PrincipalTag/team": "blue"})
    assert ps.evaluate(red).response == "Allowed"
    assert ps.evaluate(blue).response == "ExplicitlyDenied"
