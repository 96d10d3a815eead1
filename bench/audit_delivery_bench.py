"""Audit records off the hot path: client_credentials grants per second with no audit sink,
with the file or signed-trail sink written in the request (``audit.delivery: sync``), and
written by the queue's writer thread (``async``).

Every variant runs as its own server (one worker, 4 request threads) pinned to core 0, all
started at once; the load generator of ``oidc_bench.py`` (pinned to core 1) measures them in
turn, interleaved, so that noise falls on all alike; medians of ``--repeats``.  Then the same
app is called in process (a WSGI call per request, no server).  127.0.0.1 only.

    .venv/bin/python bench/audit_delivery_bench.py [--alg ES256] [--seconds 3] [--repeats 3]
        [--servers granian,gunicorn] [--variants none,file-sync,file-async,trail-sync,trail-async]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from oidc_bench import SERVICE, run  # noqa: E402
from oidc_bench import request as http_request  # noqa: E402

VARIANTS = ("none", "file-sync", "file-async", "trail-sync", "trail-async")
GRANT = b"grant_type=client_credentials"


def _audit(variant: str, work: str) -> dict[str, Any]:
    if variant == "none":
        return {"sink": "none"}
    sink, delivery = variant.split("-")
    return {"sink": sink, "delivery": delivery, "path": f"{work}/audit.log",
            "dir": f"{work}/trail", "keys_dir": f"{work}/audit-keys"}


def app() -> Any:
    """Server factory (config from AUDIT_BENCH_* variables)."""
    from idp.app import create_app
    from idp.cli import without_process_env
    from idp.config import parse_config
    from idp.demo import USERS_FILE

    work, port = os.environ["AUDIT_BENCH_DIR"], os.environ["AUDIT_BENCH_PORT"]
    alg, variant = os.environ["AUDIT_BENCH_ALG"], os.environ["AUDIT_BENCH_VARIANT"]
    config = parse_config({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "b" * 40,
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": f"{work}/keys", "generate": True},
        "audit": _audit(variant, work),
        "metadata_dirs": [f"{work}/metadata"],
        "oidc": {"access_token_alg": alg, "id_token_alg": alg},
    })
    flask_app = create_app(config, demo=True)
    wsgi = without_process_env(flask_app)
    wsgi.idp_app = flask_app  # type: ignore[attr-defined]
    return wsgi


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(server: str, variant: str, args: argparse.Namespace) -> tuple[Any, int, Path]:
    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    port = _free_port()
    env = {**os.environ, "AUDIT_BENCH_DIR": str(work), "AUDIT_BENCH_PORT": str(port),
           "AUDIT_BENCH_ALG": args.alg, "AUDIT_BENCH_VARIANT": variant,
           "PYTHONPATH": str(ROOT / "bench")}
    bindir = Path(sys.executable).parent
    if server == "gunicorn":
        cmd = [str(bindir / "gunicorn"), "-k", "gthread", "--threads", "4", "-w", "1",
               "-b", f"127.0.0.1:{port}", "--keep-alive", "30", "--log-level", "warning",
               "--chdir", str(ROOT), "audit_delivery_bench:app()"]
    else:
        cmd = [str(bindir / "granian"), "--interface", "wsgi", "--factory", "--workers", "1",
               "--blocking-threads", "4", "--no-ws", "--host", "127.0.0.1", "--port",
               str(port), "--log-level", "warning", "--working-dir", str(ROOT),
               "audit_delivery_bench:app"]
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], env=env)
    return proc, port, work


def over_http(server: str, args: argparse.Namespace) -> dict[str, float]:
    started = {v: _start(server, v, args) for v in args.variants}
    os.sched_setaffinity(0, {1})
    rates: dict[str, list[float]] = {v: [] for v in args.variants}
    try:
        for _, port, _ in started.values():
            for _ in range(300):
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
        for _ in range(args.repeats):
            for v, (_, port, _) in started.items():
                rate, ok, bad = run(port, 8, 10**6, args.seconds,
                                    lambda c, b: http_request("/oauth2/token", GRANT.decode(),
                                                              SERVICE),
                                    lambda body: b"access_token" in body)
                assert bad == 0, f"{server} {v}: {bad} failed"
                rates[v].append(rate)
    finally:
        for proc, _, work in started.values():
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(work, ignore_errors=True)
    return {v: statistics.median(r) for v, r in rates.items()}


def in_process(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """CPU time per grant, the app called as a WSGI callable on one core: in the request's
    thread, and in the whole process (the writer thread's share included: each round ends
    when its queue is written).  CPU time, unlike a rate, hardly moves with the other load
    of a shared machine.  Rounds of ``--round`` grants, the variants interleaved."""
    os.sched_setaffinity(0, {0})
    apps = {}
    works = []
    for v in args.variants:
        work = tempfile.mkdtemp(prefix="audit-bench-")
        works.append(work)
        os.environ.update(AUDIT_BENCH_DIR=work, AUDIT_BENCH_PORT="9", AUDIT_BENCH_ALG=args.alg,
                          AUDIT_BENCH_VARIANT=v)
        apps[v] = app()
    thread_us: dict[str, list[float]] = {v: [] for v in args.variants}
    process_us: dict[str, list[float]] = {v: [] for v in args.variants}

    def call(wsgi: Any) -> bytes:
        env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/oauth2/token",
               "CONTENT_LENGTH": str(len(GRANT)), "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": "application/x-www-form-urlencoded",
               "wsgi.input": io.BytesIO(GRANT), "HTTP_AUTHORIZATION": "Basic " + SERVICE}
        return b"".join(wsgi(env, lambda status, headers: None))

    n = args.round
    for _ in range(args.rounds):
        for v, wsgi in apps.items():
            auditor = wsgi.idp_app.extensions["idp"].auditor
            auditor.flush()
            t0, p0 = time.thread_time(), time.process_time()
            for _ in range(n):
                assert b"access_token" in call(wsgi)
            t1 = time.thread_time()
            auditor.flush()
            p1 = time.process_time()
            thread_us[v].append((t1 - t0) / n * 1e6)
            process_us[v].append((p1 - p0) / n * 1e6)
    for wsgi in apps.values():
        wsgi.idp_app.extensions["idp"].close()
    for work in works:
        shutil.rmtree(work, ignore_errors=True)
    return {v: (statistics.median(thread_us[v]), statistics.median(process_us[v]))
            for v in args.variants}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alg", choices=["RS256", "ES256"], default="ES256")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--servers", default="granian,gunicorn")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--rounds", type=int, default=15, help="in process: rounds per variant")
    ap.add_argument("--round", type=int, default=400, help="in process: grants per round")
    args = ap.parse_args()
    args.variants = args.variants.split(",")
    tables = {s: over_http(s, args) for s in args.servers.split(",") if s}
    cpu = in_process(args)
    print(f"\nPython {platform.python_version()}, client_credentials {args.alg}")
    print(f"\nIn process, one core: CPU time per grant, median of {args.rounds} interleaved "
          f"rounds of {args.round} grants")
    print("| audit | request thread (µs) | whole process, writer included (µs) |")
    print("| --- | ---: | ---: |")
    base = cpu.get("none")
    for v, (thread, process) in cpu.items():
        extra = ((f" (+{thread - base[0]:.0f})", f" (+{process - base[1]:.0f})") if base
                 else ("", ""))
        print(f"| {v} | {thread:.0f}{extra[0]} | {process:.0f}{extra[1]} |")
    if tables:
        print(f"\nOver HTTP: one worker on core 0, 8 connections from core 1, median of "
              f"{args.repeats} interleaved runs of {args.seconds:g} s (grants per second)")
        print("| audit | " + " | ".join(tables) + " |")
        print("| --- | " + " | ".join("---:" for _ in tables) + " |")
        for v in args.variants:
            print(f"| {v} | " + " | ".join(
                f"{t[v]:,.0f} ({t[v] / t['none']:.2f}x)" if "none" in t else f"{t[v]:,.0f}"
                for t in tables.values()) + " |")
    print(json.dumps({"cpu": cpu, "http": tables}))


if __name__ == "__main__":
    main()
