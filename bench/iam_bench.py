"""IAM policy evaluation throughput: idp.iam vs moto's IAM policy evaluation.

A realistic account: 10 roles x 5 policies x 10 statements, with wildcards in actions and
resources and conditions on about half the statements; 10,000 distinct requests (role session,
action, resource, context).  Reports decisions per second, median of ``--repeats`` runs:

* cold  - parse + validate + compile every policy, then decide every request once;
* warm  - decide the same requests again (compiled policies, decision cache);
* warm, no cache - compiled policies, decision cache off (the engine's raw speed);
* moto cold/warm - ``moto.iam.access_control.IAMPolicy`` built from the JSON, then
  ``is_action_permitted`` over each role's policies (moto has no compile step or cache; it
  implements only ``StringEquals`` and ignores other conditions, so its answers differ).

Run on one core: ``taskset -c 0 .venv/bin/python bench/iam_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moto.iam.access_control import IAMPolicy, PermissionResult  # noqa: E402

from idp.iam import PolicySet, Request, evaluate  # noqa: E402
from idp.iam.arn import compile_pattern  # noqa: E402

ACCT = "111122223333"
SERVICES = {
    "s3": ["GetObject", "PutObject", "ListBucket", "DeleteObject", "GetObjectTagging"],
    "ec2": ["DescribeInstances", "RunInstances", "StopInstances", "DescribeVolumes"],
    "dynamodb": ["GetItem", "PutItem", "Query", "DeleteItem"],
    "sqs": ["SendMessage", "ReceiveMessage", "DeleteMessage"],
    "logs": ["PutLogEvents", "CreateLogStream", "GetLogEvents"],
    "kms": ["Decrypt", "Encrypt", "GenerateDataKey"],
    "iam": ["GetRole", "ListRoles", "CreateUser", "PassRole"],
    "lambda": ["InvokeFunction", "GetFunction", "UpdateFunctionCode"],
}
TEAMS = ["red", "blue", "green", "ops"]


def resource_for(svc: str, n: int, rng: random.Random) -> str:
    region = rng.choice(["us-east-1", "eu-west-1", "us-west-2"])
    return {
        "s3": f"arn:aws:s3:::bucket-{n}/{rng.choice(['data', 'logs', 'home'])}"
              f"/f{rng.randrange(99)}",
        "ec2": f"arn:aws:ec2:{region}:{ACCT}:instance/i-{n:04d}{rng.randrange(9999):04d}",
        "dynamodb": f"arn:aws:dynamodb:{region}:{ACCT}:table/t{n}-{rng.randrange(9)}",
        "sqs": f"arn:aws:sqs:{region}:{ACCT}:q-{n}-{rng.randrange(9)}",
        "logs": f"arn:aws:logs:{region}:{ACCT}:log-group:app{n}:log-stream:s{rng.randrange(9)}",
        "kms": f"arn:aws:kms:{region}:{ACCT}:key/{n:08d}-0000-0000-0000-{rng.randrange(999):012d}",
        "iam": f"arn:aws:iam::{ACCT}:role/team{n}/r{rng.randrange(9)}",
        "lambda": f"arn:aws:lambda:{region}:{ACCT}:function:fn{n}-{rng.randrange(9)}",
    }[svc]


def pattern_for(svc: str, n: int) -> str:
    return {
        "s3": f"arn:aws:s3:::bucket-{n}/*",
        "ec2": f"arn:aws:ec2:*:{ACCT}:instance/*",
        "dynamodb": f"arn:aws:dynamodb:*:{ACCT}:table/t{n}-*",
        "sqs": f"arn:aws:sqs:us-*:{ACCT}:q-{n}-*",
        "logs": f"arn:aws:logs:*:{ACCT}:log-group:app{n}:*",
        "kms": f"arn:aws:kms:*:{ACCT}:key/*",
        "iam": f"arn:aws:iam::{ACCT}:role/team{n}/*",
        "lambda": f"arn:aws:lambda:*:{ACCT}:function:fn{n}-?",
    }[svc]


CONDITIONS: list[Callable[[random.Random], dict[str, Any]]] = [
    lambda r: {"StringEquals": {"aws:PrincipalTag/team": r.sample(TEAMS, 2)}},
    lambda r: {"IpAddress": {"aws:SourceIp": [f"10.{r.randrange(4)}.0.0/16", "192.0.2.0/24"]}},
    lambda r: {"StringLike": {"s3:prefix": ["home/${aws:PrincipalTag/team}/*", "public/*"]}},
    lambda r: {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
    lambda r: {"Bool": {"aws:SecureTransport": "true"}},
    lambda r: {"NumericLessThanEquals": {"s3:max-keys": "100"}},
    lambda r: {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "owner"]}},
    lambda r: {"StringEqualsIfExists": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}},
]


def statement(rng: random.Random, i: int) -> dict[str, Any]:
    svc = rng.choice(list(SERVICES))
    names = rng.sample(SERVICES[svc], min(2, len(SERVICES[svc])))
    actions = [f"{svc}:{n}" for n in names]
    if rng.random() < 0.4:
        actions[0] = f"{svc}:{names[0][:3]}*"
    if rng.random() < 0.05:
        actions.append("*:Describe*")
    resource: Any = [pattern_for(svc, rng.randrange(20)) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.15:
        resource = "*"
    st: dict[str, Any] = {"Sid": f"S{i}", "Effect": "Deny" if rng.random() < 0.12 else "Allow",
                          "Action": actions, "Resource": resource}
    if rng.random() < 0.5:
        st["Condition"] = rng.choice(CONDITIONS)(rng)
    return st


def build_roles(rng: random.Random) -> list[list[str]]:
    """10 roles, each 5 policy documents (JSON text) of 10 statements."""
    return [[json.dumps({"Version": "2012-10-17",
                         "Statement": [statement(rng, s) for s in range(10)]})
             for _ in range(5)] for _ in range(10)]


def build_requests(rng: random.Random, n: int) -> list[tuple[int, str, str, dict[str, Any]]]:
    seen: set[tuple[Any, ...]] = set()
    out: list[tuple[int, str, str, dict[str, Any]]] = []
    while len(out) < n:
        role = rng.randrange(10)
        svc = rng.choice(list(SERVICES))
        action = f"{svc}:{rng.choice(SERVICES[svc])}"
        resource = resource_for(svc, rng.randrange(20), rng)
        ctx: dict[str, Any] = {
            "aws:PrincipalTag/team": rng.choice(TEAMS),
            "aws:SourceIp": f"10.{rng.randrange(6)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "aws:CurrentTime": "2025-06-01T12:00:00Z", "aws:SecureTransport": rng.random() < 0.9,
            "aws:RequestedRegion": rng.choice(["us-east-1", "eu-west-1", "ap-south-1"]),
        }
        if svc == "s3":
            ctx["s3:prefix"] = rng.choice(["home/red/x", "public/a", "private/z"])
            ctx["s3:max-keys"] = str(rng.choice([10, 100, 1000]))
        if rng.random() < 0.3:
            ctx["aws:TagKeys"] = rng.sample(["env", "owner", "cost"], 2)
        key = (role, action, resource, tuple(sorted((k, str(v)) for k, v in ctx.items())))
        if key not in seen:
            seen.add(key)
            out.append((role, action, resource, ctx))
    return out


def session(role: int) -> str:
    return f"arn:aws:sts::{ACCT}:assumed-role/Role{role}/user"


def run_idp(roles: list[list[str]], reqs: list[tuple[int, str, str, dict[str, Any]]],
            cache: bool = True) -> tuple[float, float, list[str]]:
    compile_pattern.cache_clear()
    requests = [Request.make(session(r), a, res, None, ctx) for r, a, res, ctx in reqs]
    t0 = time.perf_counter()
    sets = [PolicySet.build(identity=docs, cache=cache) for docs in roles]
    first: list[str] = [evaluate(q, sets[r[0]]).response
                        for q, r in zip(requests, reqs, strict=True)]
    t1 = time.perf_counter()
    for q, r in zip(requests, reqs, strict=True):
        evaluate(q, sets[r[0]])
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, first


def moto_decide(policies: list[IAMPolicy], action: str, resource: str,
                ctx: dict[str, str]) -> str:
    allowed = False
    for p in policies:
        result = p.is_action_permitted(action, resource, None, ctx)
        if result == PermissionResult.DENIED:
            return "ExplicitlyDenied"
        allowed = allowed or result == PermissionResult.PERMITTED
    return "Allowed" if allowed else "ImplicitlyDenied"


def run_moto(roles: list[list[str]], reqs: list[tuple[int, str, str, dict[str, Any]]]
             ) -> tuple[float, float, list[str]]:
    ctxs = [{k: str(v) for k, v in ctx.items()} for _, _, _, ctx in reqs]
    t0 = time.perf_counter()
    sets = [[IAMPolicy(doc) for doc in docs] for docs in roles]
    first = [moto_decide(sets[r], a, res, c) for (r, a, res, _), c in zip(reqs, ctxs, strict=True)]
    t1 = time.perf_counter()
    for (r, a, res, _), c in zip(reqs, ctxs, strict=True):
        moto_decide(sets[r], a, res, c)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    roles = build_roles(rng)
    reqs = build_requests(rng, args.requests)
    n = len(reqs)
    rows: dict[str, list[float]] = {k: [] for k in ("idp cold", "idp warm", "idp warm, no cache",
                                                    "moto cold", "moto warm")}
    ours: list[str] = []
    theirs: list[str] = []
    for _ in range(args.repeats):
        cold, warm, ours = run_idp(roles, reqs)
        rows["idp cold"].append(n / cold)
        rows["idp warm"].append(n / warm)
        _, raw, _ = run_idp(roles, reqs, cache=False)
        rows["idp warm, no cache"].append(n / raw)
        mcold, mwarm, theirs = run_moto(roles, reqs)
        rows["moto cold"].append(n / mcold)
        rows["moto warm"].append(n / mwarm)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{n} distinct requests, 10 roles x 5 policies x 10 statements, "
          f"median of {args.repeats} repeats, python {sys.version.split()[0]}")
    print(f"{'engine':<22}{'decisions/s':>14}")
    for k, v in med.items():
        print(f"{k:<22}{v:>14,.0f}")
    print(f"ratio idp/moto cold: {med['idp cold'] / med['moto cold']:.1f}x; "
          f"warm: {med['idp warm'] / med['moto warm']:.1f}x; "
          f"warm without cache: {med['idp warm, no cache'] / med['moto warm']:.1f}x")
    counts = {r: ours.count(r) for r in ("Allowed", "ExplicitlyDenied", "ImplicitlyDenied")}
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    print(f"idp decisions: {counts}; moto agrees on {agree}/{n} "
          "(moto ignores conditions other than StringEquals and policy variables)")


if __name__ == "__main__":
    main()
