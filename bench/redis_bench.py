"""The Redis store against the memory store, over HTTP on one core: SAML SP-initiated SSO with a
session (a signed HTTP-Redirect AuthnRequest in, a signed Response out), client_credentials and
introspection of a JWT access token.

gunicorn (one gthread worker, 4 threads, audit records to a file: ``idp serve``'s default
server when this bench was written; granian is the default now, and ``serve_profile.py
--store redis`` and the side-by-side kit measure it) and the redis-server share core 0; wrk
(``-t1 -c8``) runs on core 1.  Redis runs as
docker-compose runs it (``--appendonly yes --appendfsync always --maxmemory-policy
noeviction``).  Every AuthnRequest is signed before the clock starts and used once (the IdP
refuses a replayed ID); every response is checked by the wrk script (status 200 and the
expected body), and a run with any error fails.  The servers run side by side and take turns,
``--repeats`` runs of each operation, and the median is reported; ``--baseline DIR`` adds a
server running the code checked out in DIR on the same Redis (another database), to compare
two versions in one run.  127.0.0.1 only.

    .venv/bin/python bench/redis_bench.py [--seconds 5] [--repeats 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent

SP = "https://sp.bench.example/metadata"
ACS = "https://sp.bench.example/acs"
SERVICE = base64.b64encode(b"demo-service:demo-service-secret").decode()
REDIS_ARGS = ["--appendonly", "yes", "--appendfsync", "always",
              "--maxmemory-policy", "noeviction"]

# wrk script: each request the next line of the file given after `--` (a path and query, or
# a form body), every answer checked for status 200 and a string.
WRK_LUA = r"""
local lines, i = {}, 0
bad = 0
local method = os.getenv("BENCH_METHOD")
local path = os.getenv("BENCH_PATH")
local expect = os.getenv("BENCH_EXPECT")
local headers = {["Cookie"] = os.getenv("BENCH_COOKIE"),
                 ["Authorization"] = os.getenv("BENCH_AUTH"),
                 ["Content-Type"] = "application/x-www-form-urlencoded"}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) for line in io.lines(args[1]) do lines[#lines + 1] = line end end
function request()
  i = i + 1
  if i > #lines then i = 1 end
  if method == "GET" then return wrk.format("GET", path .. lines[i], headers) end
  return wrk.format("POST", path, headers, lines[i])
end
function response(status, hdrs, body)
  if status ~= 200 or not body:find(expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\n", summary.requests, summary.duration, b,
                         e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def app() -> Any:
    """gunicorn factory: ``redis_bench:app()`` (config from REDIS_BENCH_* variables)."""
    from idp.app import create_app
    from idp.config import parse_config
    from idp.demo import USERS_FILE

    work, port, store = (os.environ["REDIS_BENCH_DIR"], os.environ["REDIS_BENCH_PORT"],
                         os.environ["REDIS_BENCH_STORE"])
    config = parse_config({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "b" * 40,
        "store": {"url": store},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": f"{work}/keys", "generate": True},
        "audit": {"sink": "file", "path": f"{work}/audit.log"},
        "metadata_dirs": [f"{work}/metadata"],
        "saml": {"service_providers": {SP: {"aws_attributes": True}}},
    })
    return create_app(config, demo=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sp_key(folder: Path) -> rsa.RSAPrivateKey:
    """The bench SP's signing key, its metadata written to ``folder`` (bench/saml_bench.py's
    SP, whose entity ID and ACS this bench's requests name)."""
    from saml_bench import sp_material

    folder.mkdir(parents=True, exist_ok=True)
    return sp_material(folder)


def authn_requests(n: int, issuer: str, key: rsa.RSAPrivateKey, path: Path) -> None:
    """``n`` signed HTTP-Redirect query strings, one a line (the SP's work, done before)."""
    from idp.saml.build import instant
    from idp.saml.messages import sign_redirect
    from idp.saml.xml import NS, encode_redirect

    with path.open("w") as out:
        for _ in range(n):
            xml = (f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" '
                   f'xmlns:saml="{NS["saml"]}" ID="_{uuid.uuid4().hex}" Version="2.0" '
                   f'IssueInstant="{instant(time.time())}" Destination="{issuer}/saml/sso" '
                   f'AssertionConsumerServiceURL="{ACS}"><saml:Issuer>{SP}</saml:Issuer>'
                   f'</samlp:AuthnRequest>')
            out.write(sign_redirect([("SAMLRequest", encode_redirect(xml.encode())),
                                     ("RelayState", "bench")], key) + "\n")


def wait_http(base: str) -> None:
    for _ in range(300):
        try:
            requests.get(f"{base}/healthz", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


def session_cookie(base: str) -> str:
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text[:300]
    r = http.post(f"{base}/login", timeout=10, allow_redirects=False, data={
        "username": "alice", "password": "alice-password", "csrf_token": csrf.group(1)})
    assert r.status_code in (302, 303), r.text[:300]
    return f"idp_session={http.cookies['idp_session']}"


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes used so far, their threads included."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wrk(port: int, seconds: int, lines: Path, script: Path, env: dict[str, str]
        ) -> tuple[float, int]:
    """Requests per second and requests of one wrk run (core 1); any error fails the run."""
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{int(seconds)}s", "-s", str(script),
         f"http://127.0.0.1:{port}", "--", str(lines)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    done, micros, bad, errors = (int(g) for g in m.groups())
    if bad or errors:
        raise RuntimeError(f"{bad} bad answers and {errors} errors out of {done}")
    return done / (micros / 1e6), done


class Server:
    """gunicorn for one store, on core 0, with what the runs need."""

    def __init__(self, root: Path, store: str, work: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "REDIS_BENCH_DIR": str(work), "REDIS_BENCH_PORT": str(self.port),
               "REDIS_BENCH_STORE": store, "PYTHONPATH": f"{root}:{ROOT / 'bench'}"}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", str(gunicorn), "-k", "gthread", "--threads", "4", "-w", "1",
             "-b", f"127.0.0.1:{self.port}", "--keep-alive", "30", "--log-level", "warning",
             "--chdir", str(root), "redis_bench:app()"], env=env)
        try:
            wait_http(self.base)
            self.cookie = session_cookie(self.base)
            self.token = requests.post(
                f"{self.base}/oauth2/token", timeout=10,
                headers={"Authorization": f"Basic {SERVICE}"},
                data={"grant_type": "client_credentials"}).json()["access_token"]
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def measure(server: Server, op: str, args: argparse.Namespace, work: Path,
            key: rsa.RSAPrivateKey, redis_pid: int | None) -> tuple[float, float]:
    """One wrk run of ``op`` against ``server``: requests per second, and CPU milliseconds
    per request of the server's worker and of the redis-server (when it has Redis)."""
    script = work / "bench.lua"
    script.write_text(WRK_LUA)
    lines = work / "lines.txt"
    env = {"BENCH_AUTH": f"Basic {SERVICE}", "BENCH_COOKIE": server.cookie}
    if op == "SAML SSO with session":
        authn_requests(args.seconds * args.saml_rate, server.base, key, lines)
        env |= {"BENCH_METHOD": "GET", "BENCH_PATH": "/saml/sso?",
                "BENCH_EXPECT": "SAMLResponse"}
    elif op == "client_credentials (RS256)":
        lines.write_text("grant_type=client_credentials\n")
        env |= {"BENCH_METHOD": "POST", "BENCH_PATH": "/oauth2/token",
                "BENCH_EXPECT": "access_token"}
    else:
        lines.write_text(f"token={server.token}\n")
        env |= {"BENCH_METHOD": "POST", "BENCH_PATH": "/oauth2/introspect",
                "BENCH_EXPECT": '"active":true'}
    pids = [*children(server.proc.pid), *([redis_pid] if redis_pid else [])]
    before = cpu_seconds(pids)
    rate, done = wrk(server.port, args.seconds, lines, script, env)
    return rate, (cpu_seconds(pids) - before) * 1000 / done


OPS = ["SAML SSO with session", "client_credentials (RS256)", "introspection (JWT)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--saml-rate", type=int, default=2000,
                    help="AuthnRequests signed per second of a run (each is used once)")
    ap.add_argument("--baseline", type=Path,
                    help="a checkout of other code to run on Redis beside this one")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="redis-bench-"))
    rdir = work / "redis"
    rdir.mkdir()
    rport = free_port()
    redis_proc = subprocess.Popen(
        ["taskset", "-c", "0", "redis-server", "--port", str(rport), "--bind", "127.0.0.1",
         "--dir", str(rdir), "--save", "", *REDIS_ARGS], stdout=subprocess.DEVNULL)
    servers: dict[str, Server] = {}
    try:
        key = sp_key(work / "metadata")
        wanted = [("memory://", ROOT, "memory://"),
                  ("Redis", ROOT, f"redis://127.0.0.1:{rport}/0")]
        if args.baseline:
            wanted.append(("Redis, baseline code", args.baseline.resolve(),
                           f"redis://127.0.0.1:{rport}/1"))
        for name, root, url in wanted:
            servers[name] = Server(root, url, work)
        runs: dict[str, dict[str, list[tuple[float, float]]]] = {
            op: {n: [] for n in servers} for op in OPS}
        for op in OPS:  # the servers take turns, run after run (drift hits them alike)
            for _ in range(args.repeats):
                for name, server in servers.items():
                    rpid = None if name.startswith("memory") else redis_proc.pid
                    runs[op][name].append(measure(server, op, args, work, key, rpid))
        print(f"\n{args.repeats} runs of {args.seconds} s each, medians; servers and "
              "redis-server on core 0, wrk -t1 -c8 on core 1.  Each cell: requests/s, and CPU "
              "ms per request (the worker + redis-server)\n")
        names = list(servers)
        print(f"| operation | {' | '.join(names)} | Redis / memory (CPU per request) |")
        print(f"| --- |{' ---: |' * (len(names) + 1)}")
        for op, by in runs.items():
            rate = {n: statistics.median(r for r, _ in v) for n, v in by.items()}
            cpu = {n: statistics.median(c for _, c in v) for n, v in by.items()}
            cells = " | ".join(f"{rate[n]:,.0f}/s, {cpu[n]:.2f} ms" for n in names)
            print(f"| {op} | {cells} | {cpu['Redis'] / cpu['memory://']:.2f} |")
    finally:
        for server in servers.values():
            server.stop()
        redis_proc.terminate()
        redis_proc.wait(20)
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
