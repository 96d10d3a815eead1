"""Introspection of opaque vs JWT access tokens (RFC 7662 §2), in process, on the memory store
and on a real ``redis-server`` (started here on a free 127.0.0.1 port, no persistence).

    .venv/bin/python bench/opaque_bench.py [--tokens 10000] [--seconds 1.5] [--rounds 3]

Two client-credentials clients of the same app differ only in ``access_token_format`` (the
JWT one signs with RS256, the default).  Each issues ``--tokens`` distinct tokens; then
``demo-service`` introspects them through the app's WSGI entry (the direct path
``idp serve`` runs, audit records to a file), interleaved round by round: one token repeated
(a JWT hits the verified-token cache) and every token in turn (10,000 exceeds that cache's
8,192).  Each answer is checked (``"active":true``).  Wall-clock rates and this process's
CPU time per call are both reported: on a shared machine the CPU time is the steadier one.
For Redis, the commands the server processed per introspection are counted (``INFO stats``).
No HTTP server: this measures what the token format changes, not the server (see
``oidc_bench.py`` for that).
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICE = "Basic " + base64.b64encode(b"demo-service:demo-service-secret").decode()
CLIENTS = {fmt: {"client_id": f"bench-{fmt}", "client_secret": f"bench-{fmt}-secret",
                 "grant_types": ["client_credentials"], "scopes": ["roles"],
                 "require_consent": False, "access_token_format": fmt}
           for fmt in ("jwt", "opaque")}


def build(work: Path, store_url: str) -> Any:
    from idp.app import create_app
    from idp.config import parse_config
    from idp.demo import USERS_FILE

    config = parse_config({
        "issuer": "http://127.0.0.1:9", "secret_key": "b" * 40, "store": {"url": store_url},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(work / "keys"), "generate": True},
        "audit": {"sink": "file", "path": str(work / "audit.log")},
        "metadata_dirs": [str(work / "metadata")],
        "oidc": {"clients": list(CLIENTS.values())},
    })
    return create_app(config, demo=True)


def post(app: Any, path: str, form: dict[str, str], auth: str) -> bytes:
    body = urlencode(form).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "9", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": "application/x-www-form-urlencoded",
               "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": auth,
               "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
               "SERVER_PROTOCOL": "HTTP/1.1"}
    status: list[str] = []
    out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"{path}: {status} {out[:200]!r}")
    return out


def issue(app: Any, fmt: str, n: int) -> tuple[list[str], float]:
    import json

    c = CLIENTS[fmt]
    auth = "Basic " + base64.b64encode(
        f"{c['client_id']}:{c['client_secret']}".encode()).decode()
    start = time.perf_counter()
    tokens = [json.loads(post(app, "/oauth2/token", {"grant_type": "client_credentials"},
                              auth))["access_token"] for _ in range(n)]
    return tokens, n / (time.perf_counter() - start)


def introspect(app: Any, tokens: list[str], seconds: float) -> tuple[float, float, int]:
    """Introspections per second (wall clock), this process's CPU microseconds per call,
    and the number of calls, cycling through ``tokens`` for ``seconds``."""
    done, i, n = 0, 0, len(tokens)
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            out = post(app, "/oauth2/introspect", {"token": tokens[i]}, SERVICE)
            if not out.startswith(b'{"active":true'):
                raise RuntimeError(f"inactive: {out[:200]!r}")
            i = (i + 1) % n
        done += 50
    return (done / (time.perf_counter() - start),
            (time.process_time() - cpu) / done * 1e6, done)


def measure(label: str, store_url: str, args: argparse.Namespace,
            commands: Callable[[], int] | None) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp), store_url)
        jwt, jwt_rate = issue(app, "jwt", args.tokens)
        opaque, opaque_rate = issue(app, "opaque", args.tokens)
        cases = {"JWT, one token repeated": jwt[:1], f"JWT, {args.tokens:,} distinct": jwt,
                 "opaque, one token repeated": opaque[:1],
                 f"opaque, {args.tokens:,} distinct": opaque}
        rates: dict[str, list[float]] = {k: [] for k in cases}
        cpus: dict[str, list[float]] = {k: [] for k in cases}
        per_call: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, toks in cases.items():
                before = commands() if commands else 0
                rate, cpu, done = introspect(app, toks, args.seconds)
                rates[name].append(rate)
                cpus[name].append(cpu)
                if commands:
                    per_call[name] = (commands() - before - 1) / done
        rows = [f"| {label}: client_credentials grants, JWT (RS256) | {jwt_rate:,.0f} | | |",
                f"| {label}: client_credentials grants, opaque | {opaque_rate:,.0f} | | |"]
        for name, got in rates.items():
            trips = f"{per_call[name]:.2f}" if name in per_call else ""
            rows.append(f"| {label}: introspection, {name} | {statistics.median(got):,.0f} "
                        f"| {statistics.median(cpus[name]):,.0f} | {trips} |")
        return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from tests.fixtures.redis_server import RedisServer

    rows = ["| store: operation | per second (median, wall clock) | IdP CPU µs per call "
            "(median) | Redis commands per call |", "| --- | ---: | ---: | ---: |"]
    rows += measure("memory", "memory://", args, None)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            client = server.client()
            rows += measure("Redis", server.url, args,
                            lambda: int(client.info("stats")["total_commands_processed"]))
        finally:
            server.stop()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
