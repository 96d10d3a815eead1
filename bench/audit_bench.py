"""Audit trail: records written per second with integrity on vs off, and ``LookupEvents``
latency over a large trail.

1. Write: ``Auditor.emit`` of realistic records (a sign-in with details) into the plain file
   sink, the trail without digests (``integrity: false``) and the signed trail (SHA-256 per
   record, a signed digest per period), on one core; medians over repeats, ratio on/off.
2. Lookup: a signed trail of ``--lookup-events`` records spread over 30 days (1,000 users, 12
   event names, access keys, roles), indexed once (timed), then ``LookupEvents`` requests
   through the protocol core (JSON in, JSON out; no HTTP, no SigV4) by each attribute, the
   latest events, a second page and a one-day window; p50/p95 per kind.

    .venv/bin/python bench/audit_bench.py [--write-events 100000] [--lookup-events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idp.audit import Auditor, FileSink, RequestInfo  # noqa: E402
from idp.audit.cloudtrail import LookupEvents  # noqa: E402
from idp.audit.index import AuditIndex  # noqa: E402
from idp.audit.trail import TrailSettings, TrailSink, iso, load_audit_keys  # noqa: E402

NAMES = ["Login", "Logout", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "OidcToken",
         "OidcRefresh", "OidcIntrospect", "SamlAssertionIssued", "GetRole", "Decide",
         "LookupEvents", "OidcConsent"]
ROLES = [f"arn:aws:iam::111122223333:role/R{i}" for i in range(20)]


def write_rate(sink_factory: Any, n: int) -> float:
    sink = sink_factory()
    auditor = Auditor(sink)
    info = RequestInfo("192.0.2.10", "Mozilla/5.0 (X11; Linux x86_64) bench", "req")
    start = time.perf_counter()
    for i in range(n):
        auditor.emit("Login", info, user=f"user{i % 1000}", event_type="AwsConsoleSignIn",
                     additional={"sessionId": "s" * 16, "groups": ["engineering", "admins"]})
    auditor.close()
    return n / (time.perf_counter() - start)


def bench_write(n: int, repeats: int, tmp: Path, keys: Path) -> dict[str, float]:
    kinds = {
        "file (one file, no integrity)": lambda d: FileSink(d / "audit.log"),
        "trail, integrity off": lambda d: TrailSink(TrailSettings(d, keys, integrity=False)),
        "trail, integrity on": lambda d: TrailSink(TrailSettings(d, keys)),
    }
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(repeats):
        for k, (name, make) in enumerate(kinds.items()):  # interleaved: noise hits all alike
            d = tmp / f"write-{r}-{k}"
            rates[name].append(write_rate(lambda d=d, make=make: make(d), n))
    return {k: statistics.median(v) for k, v in rates.items()}


def build_trail(n: int, directory: Path, keys: Path) -> tuple[list[str], list[str]]:
    """``n`` records over the last 30 days; returns sample event IDs and access keys."""
    rng = random.Random(7)
    now = time.time()
    t0 = now - 30 * 86400
    clock = [t0]
    sink = TrailSink(TrailSettings(directory, keys, roll_seconds=86400), clock=lambda: clock[0])
    keys_of = [f"ASIA{rng.getrandbits(64):016X}"[:20] for _ in range(1000)]
    ids: list[str] = []
    for i in range(n):
        clock[0] = t0 + (now - t0 - 60) * i / n
        u = rng.randrange(1000)
        name = NAMES[rng.randrange(len(NAMES))]
        rec: dict[str, Any] = {
            "eventVersion": "1.08", "eventTime": iso(clock[0]), "eventSource": "idp",
            "eventName": name, "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventType": "AwsApiCall", "userIdentity": {"type": "IdpUser",
                                                         "userName": f"user{u}"},
            "sourceIPAddress": f"10.{u // 250}.{u % 250}.{rng.randrange(250)}",
            "userAgent": "bench", "requestID": "r", "readOnly": name in ("GetRole",
                                                                         "LookupEvents"),
            "additionalEventData": {"accessKeyId": keys_of[u]},
        }
        if name.startswith("AssumeRole"):
            rec["resources"] = [{"ARN": ROLES[u % 20], "type": "AWS::IAM::Role"}]
        if rng.random() < 0.05:
            rec["errorCode"] = "AccessDenied"
        sink.write(rec)
        if i % 997 == 0:
            ids.append(rec["eventID"])
    sink.close()
    return ids, keys_of


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def bench_lookup(n: int, queries: int, tmp: Path, keys: Path) -> dict[str, Any]:
    directory = tmp / "big"
    start = time.perf_counter()
    ids, akids = build_trail(n, directory, keys)
    written = time.perf_counter() - start
    index = AuditIndex(directory, min_refresh=3600)
    start = time.perf_counter()
    index.refresh(force=True)
    indexed = time.perf_counter() - start
    size = sum(p.stat().st_size for p in directory.rglob("*.jsonl"))
    api = LookupEvents(index, b"bench-secret")
    rng = random.Random(11)
    now = time.time()

    def attr(key: str, value: str, **more: Any) -> bytes:
        return json.dumps({"LookupAttributes": [{"AttributeKey": key, "AttributeValue": value}],
                           "MaxResults": 50, **more}).encode()

    kinds = {
        "Username": lambda: attr("Username", f"user{rng.randrange(1000)}"),
        "EventName": lambda: attr("EventName", rng.choice(NAMES)),
        "AccessKeyId": lambda: attr("AccessKeyId", rng.choice(akids)),
        "ResourceName (role)": lambda: attr("ResourceName", rng.choice(ROLES)),
        "EventId": lambda: attr("EventId", rng.choice(ids)),
        "latest 50, no attribute": lambda: json.dumps({"MaxResults": 50}).encode(),
        "Username, one-day window": lambda: attr(
            "Username", f"user{rng.randrange(1000)}",
            StartTime=now - 86400 * (2 + rng.randrange(20)),
            EndTime=now - 86400 * (1 + rng.randrange(1))),
    }
    out: dict[str, Any] = {"events": n, "bytes": size, "write_s": written,
                           "index_s": indexed, "kinds": {}}
    for name, make in kinds.items():
        lat = []
        for _ in range(queries):
            body = make()
            t = time.perf_counter()
            api.handle(body)
            lat.append((time.perf_counter() - t) * 1000)
        out["kinds"][name] = (pct(lat, 0.5), pct(lat, 0.95))
    lat = []
    for _ in range(queries):  # the second page of a user's events (NextToken)
        body = json.loads(attr("Username", f"user{rng.randrange(1000)}"))
        token = api.handle(json.dumps(body).encode()).get("NextToken")
        if token is None:
            continue
        t = time.perf_counter()
        api.handle(json.dumps(body | {"NextToken": token}).encode())
        lat.append((time.perf_counter() - t) * 1000)
    out["kinds"]["Username, second page"] = (pct(lat, 0.5), pct(lat, 0.95))
    index.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lookup-events", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as d:
        tmp = Path(d)
        keys = tmp / "keys"
        load_audit_keys(keys, generate=True)
        rates = bench_write(args.write_events, args.repeats, tmp, keys)
        print(f"write: {args.write_events:,} records x {args.repeats} (median), pid {os.getpid()}")
        for name, rate in rates.items():
            print(f"  {name:34} {rate:12,.0f} records/s")
        on, off = rates["trail, integrity on"], rates["trail, integrity off"]
        print(f"  integrity on/off: {on / off:.2f} ({(1 - on / off) * 100:.1f}% slower)")
        if args.lookup_events:
            res = bench_lookup(args.lookup_events, args.queries, tmp, keys)
            print(f"lookup: {res['events']:,} events, {res['bytes'] / 1e6:,.0f} MB of logs "
                  f"(written in {res['write_s']:.1f} s, indexed in {res['index_s']:.1f} s); "
                  f"{args.queries} requests per kind, MaxResults 50")
            for name, (p50, p95) in res["kinds"].items():
                print(f"  {name:28} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms")


if __name__ == "__main__":
    main()
