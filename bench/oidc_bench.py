"""OIDC grants per second on one core: client credentials, refresh (with rotation) and
introspection, against the real app under gunicorn and under granian (the two servers of
``idp serve``, one after the other in the same run) pinned to core 0, with this load generator
pinned to core 1.  127.0.0.1 only, bounded in requests and seconds.

    .venv/bin/python bench/oidc_bench.py [--alg RS256|ES256] [--seconds 4] [--requests 20000]

After the HTTP runs, the same app is called in process (a WSGI call per request, no server),
to show how much of the time is the HTTP server's.

The generator keeps ``--connections`` keep-alive connections, one request in flight on each,
on raw non-blocking sockets (a Python HTTP client would be the bottleneck).  Each server runs
one worker process (the memory:// store) with 4 request threads, the demo clients
(``demo-service``, ``demo-web``), audit records written to a file, as in production.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICE = base64.b64encode(b"demo-service:demo-service-secret").decode()
WEB = base64.b64encode(b"demo-web:demo-web-secret").decode()
WEB_URI = "http://127.0.0.1:8400/callback"


def app() -> Any:
    """gunicorn factory: ``oidc_bench:app()`` (config from OIDC_BENCH_* variables)."""
    from idp.app import create_app
    from idp.config import parse_config
    from idp.demo import USERS_FILE

    work, port, alg = (os.environ["OIDC_BENCH_DIR"], os.environ["OIDC_BENCH_PORT"],
                       os.environ["OIDC_BENCH_ALG"])
    config = parse_config({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "b" * 40,
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": f"{work}/keys", "generate": True},
        "audit": {"sink": "file", "path": f"{work}/audit.log"},
        "metadata_dirs": [f"{work}/metadata"],
        "oidc": {"access_token_alg": alg, "id_token_alg": alg},
    })
    return create_app(config, demo=True)


def granian_app() -> Any:
    """granian factory: the bench app wrapped as ``idp serve --server granian`` wraps it."""
    from idp.cli import without_process_env

    return without_process_env(app())


# -- load generator ---------------------------------------------------------------------------

class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.out = b""
        self.state: str | None = None


def request(path: str, body: str, auth: str | None) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n")
    if auth:
        head += f"Authorization: Basic {auth}\r\n"
    return (head + "\r\n" + body).encode()


_LEN = re.compile(rb"content-length: *(\d+)", re.I)


def run(port: int, connections: int, total: int, seconds: float,
        make: Callable[[Conn, bytes | None], bytes], check: Callable[[bytes], bool]
        ) -> tuple[float, int, int]:
    """Send up to ``total`` requests for at most ``seconds``; (rate, ok, failed)."""
    sel = selectors.DefaultSelector()
    conns = [Conn(port) for _ in range(connections)]
    sent = ok = bad = 0
    start = time.perf_counter()
    deadline = start + seconds
    for c in conns:
        c.out = make(c, None)
        sent += 1
        sel.register(c.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, c)
    open_ = len(conns)
    while open_:
        for k, ev in sel.select(1.0):
            c = k.data
            if ev & selectors.EVENT_WRITE and c.out:
                n = c.sock.send(c.out)
                c.out = c.out[n:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if not ev & selectors.EVENT_READ:
                continue
            data = c.sock.recv(65536)
            if not data:
                raise RuntimeError("server closed a connection")
            c.buf += data
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            m = _LEN.search(c.buf, 0, end)
            size = int(m.group(1)) if m else 0
            if len(c.buf) < end + 4 + size:
                continue
            status_ok = c.buf.startswith(b"HTTP/1.1 200")
            body = c.buf[end + 4:end + 4 + size]
            c.buf = c.buf[end + 4 + size:]
            if status_ok and check(body):
                ok += 1
            else:
                bad += 1
                if bad < 3:
                    print("failed response:", body[:200], file=sys.stderr)
            if sent < total and time.perf_counter() < deadline:
                c.out = make(c, body)
                sent += 1
                sel.modify(c.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, c)
            else:
                sel.unregister(c.sock)
                c.sock.close()
                open_ -= 1
    elapsed = time.perf_counter() - start
    return (ok + bad) / elapsed, ok, bad


# -- setup over plain HTTP -----------------------------------------------------------------------

def refresh_tokens(base: str, n: int) -> list[str]:
    """Sign alice in once, consent once, then n code flows → n refresh-token families."""
    s = requests.Session()
    page = s.get(f"{base}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    s.post(f"{base}/login", data={"username": "alice", "password": "alice-password",
                                  "csrf_token": csrf, "next": "/account"}, timeout=30)
    out = []
    for _ in range(n):
        params = {"response_type": "code", "client_id": "demo-web", "redirect_uri": WEB_URI,
                  "scope": "openid profile email groups roles"}
        r = s.get(f"{base}/oauth2/authorize?" + urlencode(params), allow_redirects=False,
                  timeout=10)
        if r.status_code == 200:  # consent, first time only
            resume = re.search(r'name="resume" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
            r = s.post(f"{base}/oauth2/authorize", data={"csrf_token": csrf, "resume": resume,
                                                         "decision": "allow"}, timeout=10)
            loc = re.search(r'<a href="([^"]+)" id="continue-link"', r.text).group(1)  # type: ignore[union-attr]
            loc = loc.replace("&amp;", "&")
        else:
            loc = r.headers["Location"]
        code = parse_qs(urlsplit(loc).query)["code"][0]
        tok = requests.post(f"{base}/oauth2/token", auth=("demo-web", "demo-web-secret"),
                            data={"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": WEB_URI}, timeout=10).json()
        out.append(tok["refresh_token"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--servers", default="gunicorn,granian",
                    help="comma-separated: gunicorn, granian (both by default, same run)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per operation (median)")
    args = ap.parse_args()
    tables = {}
    for server in args.servers.split(","):
        tables[server] = over_http(server, args)
    os.sched_setaffinity(0, {0})  # the server's core, now free
    work = Path(tempfile.mkdtemp(prefix="oidc-bench-"))
    os.environ.update(OIDC_BENCH_DIR=str(work), OIDC_BENCH_PORT="9", OIDC_BENCH_ALG=args.alg)
    local = in_process(args)
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nPython {platform.python_version()}, {args.alg}, server on core 0 ({args.threads} "
          f"request threads, one worker), {args.connections} keep-alive connections from core 1,"
          f" median of {args.repeats} runs of <= {args.seconds:g} s / {args.requests} requests")
    names = list(next(iter(tables.values())))
    servers = list(tables)
    print("| operation | " + " | ".join(f"{s} per second (requests, failed)" for s in servers)
          + (" | granian / gunicorn |" if len(servers) == 2 else " |"))
    print("| --- | " + " | ".join("---:" for _ in servers)
          + (" | ---: |" if len(servers) == 2 else " |"))
    for name in names:
        cells = [f"{tables[s][name][0]:,.0f} ({sum(tables[s][name][1:])}, {tables[s][name][2]})"
                 for s in servers]
        ratio = (f" | {tables[servers[1]][name][0] / tables[servers[0]][name][0]:.2f}x"
                 if len(servers) == 2 else "")
        print(f"| {name} | " + " | ".join(cells) + ratio + " |")
    for name, (rate, ok, bad) in local.items():
        print(f"| {name} (no server) | {rate:,.0f} ({ok + bad}, {bad}) |")


def over_http(server_name: str, args: argparse.Namespace
              ) -> dict[str, tuple[float, int, int]]:
    """Start ``server_name`` on core 0 with the bench app and measure from core 1."""
    work = Path(tempfile.mkdtemp(prefix="oidc-bench-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OIDC_BENCH_DIR": str(work), "OIDC_BENCH_PORT": str(port),
           "OIDC_BENCH_ALG": args.alg, "PYTHONPATH": str(ROOT / "bench")}
    bindir = Path(sys.executable).parent
    if server_name == "gunicorn":  # what `idp serve` runs by default
        cmd = [str(bindir / "gunicorn"), "-k", "gthread", "--threads", str(args.threads),
               "-w", "1", "-b", f"127.0.0.1:{port}", "--keep-alive", "30", "--log-level",
               "warning", "--chdir", str(ROOT), "oidc_bench:app()"]
    else:  # what `idp serve --server granian` runs (no access log in either)
        cmd = [str(bindir / "granian"), "--interface", "wsgi", "--factory", "--workers", "1",
               "--blocking-threads", str(args.threads), "--no-ws", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--working-dir", str(ROOT),
               "oidc_bench:granian_app"]
    server = subprocess.Popen(["taskset", "-c", "0", *cmd], env=env)
    os.sched_setaffinity(0, {1})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)
        return bench(base, port, args)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def in_process(args: argparse.Namespace) -> dict[str, tuple[float, int, int]]:
    """The same app called as a WSGI callable, no HTTP server: where the time goes."""
    import io

    wsgi = app().wsgi_app

    def call(path: str, body: bytes, auth: str) -> bytes:
        env = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "REMOTE_ADDR": "127.0.0.1",
               "wsgi.input": io.BytesIO(body), "HTTP_AUTHORIZATION": "Basic " + auth}
        return b"".join(wsgi(env, lambda status, headers: None))

    cc = b"grant_type=client_credentials"
    token = json.loads(call("/oauth2/token", cc, SERVICE))["access_token"]
    intro = urlencode({"token": token}).encode()
    out = {}
    for name, path, body, want in (
            ("in process: client_credentials grants", "/oauth2/token", cc, b"access_token"),
            ("in process: introspections", "/oauth2/introspect", intro, b'"active":true')):
        def once(path: str = path, body: bytes = body, want: bytes = want
                 ) -> tuple[float, int, int]:
            n, ok, start = 0, 0, time.perf_counter()
            while n < args.requests and time.perf_counter() - start < args.seconds:
                ok += want in call(path, body, SERVICE)
                n += 1
            return n / (time.perf_counter() - start), ok, n - ok
        out[name] = median_of(args.repeats, once)
    return out


def median_of(repeats: int, once: Callable[[], tuple[float, int, int]]
              ) -> tuple[float, int, int]:
    """The run with the median rate (the machine is shared: one run can be unlucky)."""
    runs = sorted((once() for _ in range(repeats)), key=lambda r: r[0])
    return runs[len(runs) // 2]


def bench(base: str, port: int, args: argparse.Namespace) -> dict[str, tuple[float, int, int]]:
    results: dict[str, tuple[float, int, int]] = {}
    reps = args.repeats
    # baseline, same server and load generator: GET /healthz (a Flask route that does nothing)
    health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    results["baseline: GET /healthz (HTTP floor of this server)"] = median_of(reps, lambda: run(
        port, args.connections, args.requests, args.seconds, lambda c, b: health,
        lambda b: b'"ok"' in b))
    cc = request("/oauth2/token", "grant_type=client_credentials", SERVICE)
    warm = (lambda c, b: cc), (lambda b: b"access_token" in b)
    run(port, args.connections, 500, 5, *warm)
    results["client_credentials grants"] = median_of(reps, lambda: run(
        port, args.connections, args.requests, args.seconds, *warm))

    token = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=("demo-service", "demo-service-secret"),
                          timeout=10).json()["access_token"]
    intro = request("/oauth2/introspect", urlencode({"token": token}), SERVICE)
    results["introspections (active JWT)"] = median_of(reps, lambda: run(
        port, args.connections, args.requests, args.seconds, lambda c, b: intro,
        lambda b: b'"active":true' in b))

    def refresh_run() -> tuple[float, int, int]:
        queue = refresh_tokens(base, args.connections)  # fresh families for every run

        def refresh(c: Conn, body: bytes | None) -> bytes:
            rt = json.loads(body)["refresh_token"] if body else queue.pop()
            return request("/oauth2/token", urlencode({"grant_type": "refresh_token",
                                                       "refresh_token": rt}), WEB)

        return run(port, args.connections, args.requests, args.seconds, refresh,
                   lambda b: b"refresh_token" in b)

    results["refresh grants (rotation, ID token + access token)"] = median_of(reps, refresh_run)
    return results


if __name__ == "__main__":
    main()
