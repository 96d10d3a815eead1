"""Failover under load: kill the Redis primary under `idp serve`, count what was lost.

    .venv/bin/python bench/failover.py [--topology sentinel cluster] [--wait 0 1]
        [--clients 4] [--workers 2] [--before 15] [--after 20]

For each topology and each `store.wait_replicas` value, on 127.0.0.1 with free ports and temp
folders: Redis (Sentinel: a primary, two replicas, three sentinels, down-after 1 s; Cluster:
three primaries with a replica each, node timeout 1 s), slapd, and `idp serve` (gunicorn) on
`redis+sentinel://` or `redis+cluster://`.  Clients drive the mix of
tests/fixtures/failover_load.py (sign-in, SAML + AssumeRoleWithSAML, code + PKCE, refresh
rotation, revocation), remembering every item the service acknowledged.  After `--before`
seconds the primary is killed with SIGKILL (on the Cluster, the primary of `idp:epoch`; once
its replica has taken over the killed node is started again, as a supervisor would, to be
that shard's replica).  The service is never restarted.  After `--after` more seconds the
load stops and every acknowledged item is checked: session still signed in, credentials
pass GetCallerIdentity, the SAML response still refused a second time, the rotated refresh
token works once and the spent one does not, the revoked one stays revoked.

Printed as Markdown: per run, iterations/s and p50/p99 of each step before the kill (the cost
of WAIT), errors after the kill and the seconds until the last one (time to recovery), and
acknowledged/lost per kind.  Exit status 1 if anything acknowledged was lost with
`wait_replicas` >= 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak import ACCOUNT, USERS, WEB_SECRET, WEB_URI, config  # noqa: E402
from idp.store.redis import RedisStore  # noqa: E402
from tests.fixtures.failover_load import KINDS, Load, Target  # noqa: E402
from tests.fixtures.redis_ha import start_cluster_ha, start_sentinel_ha  # noqa: E402
from tests.fixtures.servers import free_port, wait_for_port  # noqa: E402
from tests.fixtures.slapd import Slapd, running_slapd  # noqa: E402

IDP = str(Path(sys.executable).parent / "idp")
STEPS = ("login", "saml", "assume_saml", "code", "refresh", "revoke")


def start_redis(topology: str, work: Path, down_after_ms: int
                ) -> tuple[str, Callable[[], float | None], Callable[[], None]]:
    """Start the topology: its URL, how to kill its primary (returning when the killed node
    was started again, if it is), how to stop it all."""
    if topology == "sentinel":
        sentinel = start_sentinel_ha(work, down_after_ms=down_after_ms)

        def kill_sentinel_primary() -> float | None:
            sentinel.kill_primary()
            return None

        return sentinel.url, kill_sentinel_primary, sentinel.stop
    cluster = start_cluster_ha(work)

    def kill_cluster_primary() -> float | None:
        cluster.kill_primary("idp:epoch")
        cluster.wait_failover()
        cluster.restart_killed()
        return time.monotonic()

    return cluster.url, kill_cluster_primary, cluster.stop


def write_cost(url: str, rounds: int = 10, batch: int = 200) -> dict[int, tuple[float, float]]:
    """p50/p99 µs of one ``SET`` through :class:`RedisStore` with ``wait_replicas`` 0 and 1,
    in interleaved batches (the cost of WAIT without the service's noise around it)."""
    stores = {w: RedisStore.from_url(url, wait_replicas=w, wait_timeout_ms=500) for w in (0, 1)}
    samples: dict[int, list[float]] = {0: [], 1: []}
    try:
        for _ in range(rounds):
            for w, store in stores.items():
                for i in range(batch):
                    started = time.perf_counter()
                    store.set(f"idp:bench:{i}", b"x" * 200, 60)
                    samples[w].append(time.perf_counter() - started)
    finally:
        for store in stores.values():
            store.close()
    out = {}
    for w, v in samples.items():
        v.sort()
        out[w] = (round(v[len(v) // 2] * 1e6), round(v[int(len(v) * 0.99)] * 1e6))
    return out


def one_run(args: argparse.Namespace, work: Path, slapd: Slapd, topology: str,
            wait: int) -> dict[str, Any]:
    """One topology with one `wait_replicas`: start, load, kill, recover, verify."""
    url, kill, stop = start_redis(topology, work / "redis", args.down_after_ms)
    cost = write_cost(url) if wait == args.wait[0] else None
    port = free_port()
    cfg = config(port, slapd, url)
    cfg["store"].update({"wait_replicas": wait, "wait_timeout_ms": args.wait_timeout_ms})
    (work / "idp.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "IDP_SECRET_KEY": "s" * 48, "LDAP_PASSWORD": slapd.bind_password}
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen([IDP, "serve", "--config", str(work / "idp.yaml"), "--bind",
                             f"127.0.0.1:{port}", "--workers", str(args.workers)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 60)
        load = Load(Target(
            base=f"http://127.0.0.1:{port}", users=USERS, client_id="soak-web",
            client_secret=WEB_SECRET, redirect_uri=WEB_URI,
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/Developer",
            provider_arn=f"arn:aws:iam::{ACCOUNT}:saml-provider/soak-idp"))
        warm = Load(load.target)
        for n in range(2 * args.workers):  # first sign-ins open each worker's connections
            warm.iteration(n)
        stop_at = [float("inf")]
        threads = load.run(args.clients, lambda: time.monotonic() > stop_at[0])
        started = time.monotonic()
        time.sleep(args.before)
        killed_at = time.monotonic()
        stop_at[0] = killed_at + args.after
        restarted = kill()
        for t in threads:
            t.join(args.after + 30)
        before = [r for r in load.requests_log if r[0] + r[3] < killed_at]  # answered before
        lat: dict[str, list[float]] = {}
        for _, step, ok, secs in before:
            if ok:
                lat.setdefault(step, []).append(secs)
        iterations_before = len(lat.get("revoke", []))
        result = load.verify()
        return {
            "topology": topology, "wait_replicas": wait,
            "iterations_per_s": iterations_before / (killed_at - started),
            "errors_before_kill": sum(not r[2] for r in before),
            "latency_ms": {s: _percentiles(v) for s, v in lat.items()},
            "outage": load.outage(killed_at),
            "restarted_after_s": None if restarted is None else round(restarted - killed_at, 1),
            "lost": result, "write_us": cost,
            "sample_errors": sorted({e.splitlines()[0][:60] for _, e in load.errors})[:6],
            "errors_before": [e.splitlines()[0][:200] for t, e in load.errors if t < killed_at],
        }
    finally:
        proc.terminate()
        proc.wait(60)
        stop()


def _percentiles(values: list[float]) -> tuple[float, float]:
    v = sorted(values)
    p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
    return round(v[len(v) // 2] * 1000, 1), round(p99 * 1000, 1)


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    lines = [f"`{' '.join(['bench/failover.py', *sys.argv[1:]])}` on {platform.node()} "
             f"({os.cpu_count()} CPUs), {args.clients} clients, `idp serve --workers "
             f"{args.workers}`, wait_timeout_ms {args.wait_timeout_ms}", "",
             "| topology | wait_replicas | it/s before | errors before | errors after kill | "
             "last error after kill (s) | "
             + " | ".join(f"{k} acked/lost" for k in KINDS) + " |",
             "| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in KINDS)
             + " |"]
    for r in runs:
        lines.append(
            f"| {r['topology']} | {r['wait_replicas']} | {r['iterations_per_s']:.1f} | "
            f"{r['errors_before_kill']} | {r['outage']['errors']} | "
            f"{r['outage']['last_error_s']} | "
            + " | ".join(f"{r['lost'][k][0]}/{r['lost'][k][1]}" for k in KINDS) + " |")
    lines += ["", "p50 / p99 ms per step before the kill:", "",
              "| topology | wait_replicas | " + " | ".join(STEPS) + " |",
              "| --- | ---: | " + " | ".join("---:" for _ in STEPS) + " |"]
    for r in runs:
        cells = [("{} / {}".format(*r["latency_ms"][s]) if s in r["latency_ms"] else "-")
                 for s in STEPS]
        lines.append(f"| {r['topology']} | {r['wait_replicas']} | " + " | ".join(cells) + " |")
    lines += ["", "One `SET` through the store, µs p50 / p99 (2,000 of each, interleaved "
              "batches of 200):", ""]
    for r in runs:
        if r["write_us"]:
            w0, w1 = r["write_us"][0], r["write_us"][1]
            lines.append(f"- {r['topology']}: wait_replicas 0: {w0[0]} / {w0[1]}; "
                         f"wait_replicas 1: {w1[0]} / {w1[1]}")
    for r in runs:
        if r["errors_before"]:
            lines.append(f"\n{r['topology']} wait_replicas={r['wait_replicas']} errors before "
                         "the kill: " + "; ".join(f"`{e}`" for e in r["errors_before"][:4]))
        if r["restarted_after_s"] is not None:
            lines.append(f"\n{r['topology']} wait_replicas={r['wait_replicas']}: killed node "
                         f"restarted {r['restarted_after_s']} s after the kill")
        if r["sample_errors"]:
            lines.append(f"\n{r['topology']} wait_replicas={r['wait_replicas']} errors seen: "
                         + "; ".join(f"`{e}`" for e in r["sample_errors"]))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topology", nargs="+", choices=["sentinel", "cluster"],
                   default=["sentinel", "cluster"])
    p.add_argument("--wait", nargs="+", type=int, default=[0, 1], help="wait_replicas values")
    p.add_argument("--wait-timeout-ms", type=int, default=500)
    p.add_argument("--down-after-ms", type=int, default=1000,
                   help="Sentinel's down-after-milliseconds (the recorded runs used 1000)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--before", type=float, default=15.0, help="seconds of load before the kill")
    p.add_argument("--after", type=float, default=20.0, help="seconds of load after the kill")
    p.add_argument("--json", type=Path, help="also write the raw result here")
    args = p.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="idp-failover-") as tmp, \
            running_slapd(Path(tmp) / "slapd") as slapd:
        for topology in args.topology:
            for wait in args.wait:
                work = Path(tmp) / f"{topology}-{wait}"
                work.mkdir()
                runs.append(one_run(args, work, slapd, topology, wait))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs))
    print(report(args, runs), flush=True)
    if any(r["wait_replicas"] and any(lost for _, lost in r["lost"].values()) for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
