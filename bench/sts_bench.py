"""STS throughput: ``AssumeRoleWithSAML`` and ``AssumeRoleWithWebIdentity`` per second with full
verification and the Redis store, against ``moto_server`` as the baseline, in the same run.

    .venv/bin/python bench/sts_bench.py [--seconds 5] [--requests 4000]

Three measurements, each server process pinned to core 0 and the load generator to core 1:

1. **core**: ``StsService.handle`` called in a loop in one process on core 0 (no HTTP), store
   in a real ``redis-server``: what the STS itself costs per request.
2. **HTTP, raw replay**: the exact requests boto3 builds (captured from botocore's
   ``before-send`` event: same URL, headers and form body) replayed on keep-alive connections
   to ``gunicorn -k gthread -w 1`` (Redis store) and to ``moto_server``: server-bound rates.
3. **boto3 end-to-end**: ``client.assume_role_with_saml(...)`` in a loop in 2 processes on
   core 1, against both servers: what an SDK user sees (client-bound on this machine).

Each measurement is the median of 3 rounds.  Every SAML assertion is distinct and signed
(RSA-SHA256) before timing (one-time use is enforced); web identity tokens are RS256 ID
tokens of this IdP.  Moto verifies neither signature, audience, recipient, time window,
replay nor trust policy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCT = "111122223333"
PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
ROLE = f"arn:aws:iam::{ACCT}:role/Developer"


def config(work: str, port: str, store: str) -> Any:
    from idp.config import parse_config
    from idp.demo import USERS_FILE

    return parse_config({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "b" * 40,
        "store": {"url": store},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": f"{work}/keys", "generate": True},
        "audit": {"sink": "file", "path": f"{work}/audit.log"},
        "metadata_dirs": [f"{work}/metadata"],
    })


def app():  # type: ignore[no-untyped-def]
    """gunicorn factory: ``sts_bench:app()`` (config from STS_BENCH_* variables)."""
    from idp.app import create_app

    env = os.environ
    return create_app(config(env["STS_BENCH_DIR"], env["STS_BENCH_PORT"],
                             env["STS_BENCH_STORE"]), demo=True)


# -- inputs -----------------------------------------------------------------------------------

def assertions(issuer: str, keys_dir: Path, n: int) -> list[str]:
    from idp.keys import KeyRing
    from tests.sts import assertions as A

    key = KeyRing.load(keys_dir).active("RS256")
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        spec = A.Spec(issuer, now=now, lifetime=3600, session_name=f"bench{i % 1000}")
        out.append(A.encode(A.signed_response(spec, key)))
    return out


def tokens(issuer: str, keys_dir: Path, n: int) -> list[str]:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from idp.keys import KeyRing

    k = KeyRing.load(keys_dir).active("RS256")
    key = RSAKey.import_key(k.private_key)
    now = int(time.time())
    return [jwt.encode({"alg": "RS256", "kid": k.kid, "typ": "JWT"},
                       {"iss": issuer, "sub": f"user{i}", "aud": "demo-cli", "iat": now,
                        "exp": now + 3600, "roles": [ROLE]}, key, algorithms=["RS256"])
            for i in range(n)]


def sts_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def captured(endpoint: str, calls: list[Callable[[Any], Any]]) -> list[bytes]:
    """The raw HTTP requests boto3 sends for ``calls`` (captured, not sent)."""
    from botocore.awsrequest import AWSResponse

    client = sts_client(endpoint)
    raw: list[bytes] = []

    def grab(request: Any, **_: Any) -> AWSResponse:
        parts = request.url.split("/", 3)
        path = "/" + (parts[3] if len(parts) > 3 else "")
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        head = f"{request.method} {path} HTTP/1.1\r\nHost: {parts[2]}\r\n"
        for k, v in request.headers.items():
            if k.lower() not in ("host", "content-length"):
                head += f"{k}: {v.decode() if isinstance(v, bytes) else v}\r\n"
        raw.append((head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        return AWSResponse(request.url, 500, {}, None)

    client.meta.events.register("before-send", grab)
    for call in calls:
        try:
            call(client)
        except Exception:  # noqa: BLE001, S112 - the fake response is an error, by design
            continue
    return raw


# -- load generator ---------------------------------------------------------------------------

def replay(port: int, reqs: list[bytes], seconds: float, ok: bytes,
           connections: int = 8) -> tuple[float, int, int]:
    """Send ``reqs`` on keep-alive connections, one in flight each; (rate, ok, failed)."""
    sel = selectors.DefaultSelector()
    queue = list(reversed(reqs))
    good = bad = 0
    conns: list[dict[str, Any]] = [{"sock": None, "buf": b""}
                                   for _ in range(min(connections, len(reqs)))]

    def send(c: dict[str, Any], reopen: bool = False) -> None:
        if c["sock"] is None or reopen:  # servers without keep-alive (moto_server) close
            if c["sock"] is not None:
                sel.unregister(c["sock"])
                c["sock"].close()
            c["sock"] = socket.create_connection(("127.0.0.1", port))
            c["sock"].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(c["sock"], selectors.EVENT_READ, c)
        c["buf"] = b""
        c["sock"].sendall(queue.pop())

    start = time.perf_counter()
    for c in conns:
        send(c)
    active = len(conns)
    while active and time.perf_counter() - start < seconds:
        for key, _ in sel.select(timeout=1):
            c = key.data
            chunk = c["sock"].recv(65536)
            if not chunk:
                sel.unregister(c["sock"])
                c["sock"].close()
                active -= 1
                continue
            c["buf"] += chunk
            head, sep, rest = c["buf"].partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(rest) < length:
                continue
            if ok in rest[:length] and head.startswith(b"HTTP/1.1 200"):
                good += 1
            else:
                bad += 1
            closing = head.startswith(b"HTTP/1.0") or b"connection: close" in head.lower()
            if queue and time.perf_counter() - start < seconds:
                send(c, reopen=closing)
            else:
                sel.unregister(c["sock"])
                active -= 1
    elapsed = time.perf_counter() - start
    for c in conns:
        if c["sock"] is not None:
            c["sock"].close()
    return (good + bad) / elapsed, good, bad


def median_of(rounds: int, items: list[Any], run: Callable[[list[Any]], tuple[float, int, int]]
              ) -> tuple[float, int, int]:
    """Run on ``rounds`` slices of ``items``; the median rate, with the requests and failures
    of every round."""
    size = len(items) // rounds
    outs = [run(items[i * size:(i + 1) * size]) for i in range(rounds)]
    return (statistics.median(o[0] for o in outs), sum(o[1] for o in outs),
            sum(o[2] for o in outs))


def _boto_worker(args: tuple[str, list[str], str, float, Any]) -> tuple[int, int, float]:
    endpoint, items, kind, seconds, start_at = args
    os.sched_setaffinity(0, {1})
    client = sts_client(endpoint)
    client.meta.events  # noqa: B018 - the model is loaded by now
    good = bad = 0
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.time()
    end = t0 + seconds
    for item in items:
        if time.time() >= end:
            break
        try:
            if kind == "saml":
                client.assume_role_with_saml(RoleArn=ROLE, PrincipalArn=PROVIDER,
                                             SAMLAssertion=item)
            else:
                client.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="bench",
                                                     WebIdentityToken=item)
            good += 1
        except Exception:  # noqa: BLE001
            bad += 1
    return good, bad, time.time() - t0


def boto_run(endpoint: str, items: list[str], kind: str, seconds: float,
             procs: int = 2) -> tuple[float, int, int]:
    start_at = time.time() + 8.0  # every worker has built its client by then
    chunks = [items[i::procs] for i in range(procs)]
    with mp.get_context("fork").Pool(procs) as pool:
        results = pool.map(_boto_worker, [(endpoint, c, kind, seconds, start_at)
                                          for c in chunks])
    good = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    return (good + bad) / max(max(r[2] for r in results), 0.001), good, bad


# -- CPU accounting (the machine is shared: wall-clock rates depend on other jobs) ----------

_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(tree_cpu(int(c)) for c in children)


def measured(pid: int, run: Callable[[], tuple[float, int, int]]
             ) -> tuple[float, int, int, float]:
    """``run`` plus the requests per CPU second the server at ``pid`` spent on them."""
    before = tree_cpu(pid)
    rate, good, bad = run()
    used = tree_cpu(pid) - before
    return rate, good, bad, (good + bad) / used if used > 0 else 0.0


# -- servers ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str) -> None:
    for _ in range(300):
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def core_bench(work: Path, port: int, redis_url: str, saml: list[str], jwts: list[str],
               seconds: float) -> dict[str, float]:
    """``StsService.handle`` in a loop, this process pinned to core 0."""
    from urllib.parse import urlencode

    from idp.app import build_components, create_app
    from idp.sts import build_request

    os.sched_setaffinity(0, {0})
    cfg = config(str(work), str(port), redis_url)
    comps = build_components(cfg, demo=True)
    create_app(cfg, comps, demo=True)
    svc = comps.extras["sts"]
    headers = {"content-type": "application/x-www-form-urlencoded"}
    out: dict[str, float] = {}
    for name, items, make in (
        ("AssumeRoleWithSAML", saml, lambda a: {"Action": "AssumeRoleWithSAML",
                                                "RoleArn": ROLE, "PrincipalArn": PROVIDER,
                                                "SAMLAssertion": a}),
        ("AssumeRoleWithWebIdentity", jwts, lambda t: {"Action": "AssumeRoleWithWebIdentity",
                                                       "RoleArn": ROLE,
                                                       "RoleSessionName": "bench",
                                                       "WebIdentityToken": t}),
    ):
        bodies = [urlencode({"Version": "2011-06-15", **make(i)}).encode() for i in items]
        rates = []
        total = 0
        c0 = time.process_time()
        for chunk in (bodies[i::3] for i in range(3)):  # median of 3 rounds
            n = 0
            t0 = time.perf_counter()
            for body in chunk:
                r = svc.handle(build_request("POST", "/sts", "", headers, body))
                assert r.status == 200, r.body[:300]
                n += 1
                if time.perf_counter() - t0 > seconds / 3:
                    break
            rates.append(n / (time.perf_counter() - t0))
            total += n
        out[name] = statistics.median(rates)
        out[name + " per CPU second"] = total / (time.process_time() - c0)
    comps.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    from tests.fixtures.redis_server import RedisServer

    work = Path(tempfile.mkdtemp(prefix="sts-bench-"))
    redis = RedisServer(work / "redis").start()
    if redis.proc is not None:  # the store is another machine in production: not core 0
        os.sched_setaffinity(redis.proc.pid, {1})
    port, moto_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port}"
    from idp.keys import init_keys

    init_keys(work / "keys", "127.0.0.1")
    os.sched_setaffinity(0, {1})
    from idp.store.epoch import EPOCH_KEY, EPOCH_TTL

    def start_epoch() -> None:
        """The store's epoch began before the assertions are signed: the STS refuses one-time
        tokens issued before its store's data began (a store that lost its replay records)."""
        redis.client().set(EPOCH_KEY, repr(time.time() - 60).encode(), ex=EPOCH_TTL)

    start_epoch()
    n = args.requests
    print(f"signing {3 * n} assertions and {n} tokens…", file=sys.stderr)
    core_saml = assertions(issuer, work / "keys", n)
    jwts = tokens(issuer, work / "keys", min(n, 500))
    results: dict[str, tuple[float, int, int, float]] = {}
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        core = pool.apply(core_bench, (work, port, redis.url, core_saml, jwts * 8,
                                       args.seconds))
    redis.client().flushall()
    start_epoch()
    env = {**os.environ, "STS_BENCH_DIR": str(work), "STS_BENCH_PORT": str(port),
           "STS_BENCH_STORE": redis.url}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        ["taskset", "-c", "0", str(gunicorn), "-k", "gthread", "--threads", str(args.threads),
         "-w", "1", "-b", f"127.0.0.1:{port}", "--keep-alive", "30", "--log-level", "warning",
         "--chdir", str(ROOT), "--pythonpath", str(ROOT / "bench"), "sts_bench:app()"], env=env)
    moto = subprocess.Popen(["taskset", "-c", "0", str(Path(sys.executable).parent / "moto_server"),
                             "-p", str(moto_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_http(issuer + "/healthz")
        wait_http(f"http://127.0.0.1:{moto_port}/")
        for target, tport in (("idp", port), ("moto", moto_port)):
            ep = f"http://127.0.0.1:{tport}" + ("/sts" if target == "idp" else "")
            warm = sts_client(ep)  # moto imports its backends on the first request
            warm.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="warm",
                                               WebIdentityToken=jwts[0])
            warm.assume_role_with_saml(RoleArn=ROLE, PrincipalArn=PROVIDER,
                                       SAMLAssertion=assertions(issuer, work / "keys", 1)[0])
            saml = assertions(issuer, work / "keys", n)
            raw = captured(ep, [lambda c, a=a: c.assume_role_with_saml(
                RoleArn=ROLE, PrincipalArn=PROVIDER, SAMLAssertion=a) for a in saml])
            pid = server.pid if target == "idp" else moto.pid
            results[f"{target} raw AssumeRoleWithSAML"] = measured(
                pid, lambda raw=raw, tport=tport: median_of(  # type: ignore[misc]
                    3, raw, lambda r: replay(tport, r, args.seconds / 3, b"<AccessKeyId>")))
            raw = captured(ep, [lambda c, t=t: c.assume_role_with_web_identity(
                RoleArn=ROLE, RoleSessionName="bench", WebIdentityToken=t)
                for t in jwts * (n // len(jwts) + 1)])
            results[f"{target} raw AssumeRoleWithWebIdentity"] = measured(
                pid, lambda raw=raw, tport=tport: median_of(  # type: ignore[misc]
                    3, raw[:n], lambda r: replay(tport, r, args.seconds / 3, b"<AccessKeyId>")))
            saml = assertions(issuer, work / "keys", n)
            results[f"{target} boto3 AssumeRoleWithSAML"] = measured(
                pid, lambda ep=ep, saml=saml: boto_run(  # type: ignore[misc]
                    ep, saml, "saml", args.seconds))
    finally:
        server.terminate()
        moto.terminate()
        server.wait(10)
        moto.wait(10)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nPython {platform.python_version()}, RSA-2048 keys, Redis store, "
          f"gunicorn gthread x{args.threads} (1 worker) and moto_server each on core 0, "
          "load from core 1")
    print("| measurement | requests | per second (wall) | per server CPU second |\n"
          "| --- | ---: | ---: | ---: |")
    for name in ("AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"):
        print(f"| idp core {name} (StsService.handle, Redis) | - | {core[name]:,.0f} | "
              f"{core[name + ' per CPU second']:,.0f} |")
    for name, (rate, good, bad, per_cpu) in results.items():
        print(f"| {name} | {good + bad} ({bad} failed) | {rate:,.0f} | {per_cpu:,.0f} |")


if __name__ == "__main__":
    main()
