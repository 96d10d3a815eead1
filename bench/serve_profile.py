"""Where a request's time goes under ``idp serve``: requests per second with ``wrk`` and,
optionally, a sampling profile of the worker with ``py-spy``.

``idp serve --workers 1 --threads 4`` (gunicorn or granian) pinned to core 0, ``wrk -t1 -c8``
pinned to core 1, the memory:// store, audit records to a file, ``/metrics`` on, the access
log on (as ``idp serve`` runs).  Endpoints: ``GET /healthz`` (the server's floor), client
credentials grants (RS256 and ES256 access tokens), introspection of one token and of
``--pool`` distinct tokens in turn, SAML SSO (HTTP-Redirect, a signed-in session).
``--store redis`` starts a ``redis-server`` on the server's core instead (AOF on, ``appendfsync
always``, as docker-compose.yml runs it), and its CPU is counted with the server's.

    .venv/bin/python bench/serve_profile.py [--servers gunicorn,granian] [--seconds 5]
        [--only healthz,cc-rs,cc-es,intro1,introN,saml] [--store memory|redis] [--profile DIR]

With ``--profile DIR`` (needs ``py-spy`` on PATH or in the venv), each endpoint's run is also
sampled (``py-spy record --format raw --idle`` off) into ``DIR/<server>-<endpoint>.txt`` and
the top functions by inclusive and own time are printed.  The profiler takes CPU from the
server's core: read profiled rates as shares, not as throughput.
"""

from __future__ import annotations

import argparse
import base64
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
BIN = Path(sys.executable).parent
SERVER_CPU, LOAD_CPU = os.environ.get("BENCH_SERVER_CPU", "0"), os.environ.get(
    "BENCH_LOAD_CPU", "1")

WRK_LUA = r"""
local reqs = {}
local idx = 0
local expect = os.getenv("EXPECT")
ok, bad = 0, 0
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(os.getenv("REQ_FILE")) do
    local m, p, h, b = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    for kv in h:gmatch("[^|]+") do
      local k, v = kv:match("^([^:]+):%s*(.*)$")
      headers[k] = v
    end
    if b == "" then b = nil end
    reqs[#reqs + 1] = wrk.format(m, p, headers, b)
  end
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
function response(status, headers, body)
  if (status == 200 or status == 302) and body:find(expect, 1, true) then
    ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local good, wrong = 0, 0
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    wrong = wrong + t:get("bad")
  end
  io.write(string.format("RESULT %d %d %d\n", good, wrong,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def basic(cid: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()


def config(work: Path, port: int, store: str) -> Path:
    from saml_bench import sp_material

    from idp.demo import USERS_FILE

    (work / "md").mkdir()
    SP_KEY[:] = [sp_material(work / "md")]
    cfg = work / "idp.yaml"
    cfg.write_text(f"""issuer: http://127.0.0.1:{port}
secret_key: {"k" * 40}
store: {{url: "{store}"}}
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
keys: {{dir: {work / "keys"}, generate: true}}
audit: {{sink: file, path: {work / "audit.log"}}}
metadata_dirs: [{work / "md"}]
metrics: {{enabled: true}}
oidc:
  clients:
    - {{client_id: bench-rs, client_secret: bench-secret, grant_types: [client_credentials],
       scopes: [roles], require_consent: false, access_token_alg: RS256}}
    - {{client_id: bench-es, client_secret: bench-secret, grant_types: [client_credentials],
       scopes: [roles], require_consent: false, access_token_alg: ES256}}
""")
    return cfg


def token(base: str, cid: str) -> str:
    r = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(cid, "bench-secret"), timeout=10)
    return str(r.json()["access_token"])


def saml_requests(base: str, work: Path, n: int) -> tuple[str, list[str]]:
    """A signed-in session cookie and ``n`` fresh signed HTTP-Redirect AuthnRequests from the
    SP of ``bench/saml_bench.py`` (its metadata written to ``work/md`` before the start)."""
    from saml_bench import requests_for

    s = requests.Session()
    page = s.get(f"{base}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    s.post(f"{base}/login", data={"username": "alice", "password": "alice-password",
                                  "csrf_token": csrf.group(1), "next": "/account"}, timeout=30)
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    return cookie, [f"/saml/sso?{q}" for q in requests_for(n, base, SP_KEY[0])]


SP_KEY: list[object] = []


def write_reqs(path: Path, reqs: list[tuple[str, str, dict[str, str], str]]) -> Path:
    path.write_text("".join(
        f"{m}\t{p}\t{'|'.join(f'{k}: {v}' for k, v in h.items())}\t{b}\n" for m, p, h, b in reqs))
    return path


def wrk(port: int, reqs: Path, expect: str, seconds: float, lua: Path
        ) -> tuple[float, int, int]:
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c8", f"-d{int(seconds)}s", "-s", str(lua),
         f"http://127.0.0.1:{port}"], capture_output=True, text=True,
        env={**os.environ, "REQ_FILE": str(reqs), "EXPECT": expect}, timeout=seconds + 30)
    m = re.search(r"RESULT (\d+) (\d+) (\d+)", out.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    assert m and rate, out.stdout + out.stderr
    return float(rate.group(1)), int(m.group(1)), int(m.group(2)) + int(m.group(3))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its threads, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(pid: int) -> int:
    """The one worker process below ``idp serve`` (gunicorn's or granian's)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                              text=True).stdout.split()
        if kids:
            return int(kids[-1])
        time.sleep(0.1)
    raise RuntimeError("no worker")


def summarize(raw: Path, top: int) -> str:
    """Top frames by inclusive and own share of the samples (py-spy ``raw`` format: one
    collapsed stack a line, then its count)."""
    incl: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [re.sub(r" \((?:.*/)?(?:site-packages/)?([^/]+?):\d+\)$", r" (\1)", f)
                  for f in stack.split(";")]
        for f in set(frames):
            incl[f] += count
        own[frames[-1]] += count
    lines = [f"{total} samples; inclusive:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in incl.most_common(top)]
    lines.append("own:")
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    return "\n".join(lines)


cpu_us: dict[tuple[str, str], float] = {}


def start_redis(work: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A ``redis-server`` on a free port, pinned to the server's core, AOF ``always``."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "redis").mkdir()
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, "redis-server", "--bind", "127.0.0.1", "--port",
         str(port), "--dir", str(work / "redis"), "--appendonly", "yes", "--appendfsync",
         "always", "--maxmemory-policy", "noeviction", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                              text=True)
        if ping.stdout.strip() == "PONG":
            break
        time.sleep(0.1)
    return f"redis://127.0.0.1:{port}", proc


def run_server(server: str, args: argparse.Namespace, work: Path) -> dict[str, tuple[float, int,
                                                                                       int]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis_proc = None
    store = "memory://"
    if args.store == "redis":
        store, redis_proc = start_redis(work)
    cfg = config(work, port, store)
    cmd = ["taskset", "-c", SERVER_CPU, str(BIN / "idp"), "serve", "--config", str(cfg),
           "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", str(args.threads),
           "--server", server]
    log = (work / f"{server}.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}"
    lua = work / "bench.lua"
    lua.write_text(WRK_LUA)
    results = {}
    try:
        for _ in range(300):
            try:
                requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.1)
        wpid = worker_pid(proc.pid)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        cc = "grant_type=client_credentials"
        endpoints: dict[str, tuple[list[tuple[str, str, dict[str, str], str]], str]] = {}
        want = args.only.split(",")
        if "healthz" in want:
            endpoints["healthz"] = ([("GET", "/healthz", {}, "")], '"ok"')
        for key, cid in (("cc-rs", "bench-rs"), ("cc-es", "bench-es")):
            if key in want:
                endpoints[key] = ([("POST", "/oauth2/token",
                                    {**form, "Authorization": basic(cid, "bench-secret")}, cc)],
                                  "access_token")
        auth = {**form, "Authorization": basic("bench-rs", "bench-secret")}
        if "intro1" in want:
            endpoints["intro1"] = ([("POST", "/oauth2/introspect", auth,
                                     "token=" + token(base, "bench-rs"))], '"active":true')
        if "introN" in want:
            endpoints["introN"] = ([("POST", "/oauth2/introspect", auth,
                                     "token=" + token(base, "bench-rs"))
                                    for _ in range(args.pool)], '"active":true')
        if "saml" in want:
            cookie, paths = saml_requests(base, work, args.saml_pool)
            endpoints["saml"] = ([("GET", p, {"Cookie": cookie}, "") for p in paths],
                                 "SAMLResponse")
        for name, (reqs, expect) in endpoints.items():
            path = write_reqs(work / f"{name}.reqs", reqs)
            if name != "saml":  # each AuthnRequest is answered once
                wrk(port, path, expect, 1, lua)  # warm-up
            spy = None
            if args.profile:
                out = Path(args.profile) / f"{server}-{name}.txt"
                spy = subprocess.Popen(
                    [str(shutil.which("py-spy") or BIN / "py-spy"), "record", "--pid",
                     str(wpid), "--format", "raw", "--rate", "250", "--nonblocking", "--gil",
                     "--output", str(out), "--duration", str(int(args.seconds))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rpid = [redis_proc.pid] if redis_proc else []
            cpu = sum(map(cpu_seconds, [wpid, proc.pid]))
            rcpu = sum(map(cpu_seconds, rpid))
            results[name] = wrk(port, path, expect, args.seconds, lua)
            cpu = sum(map(cpu_seconds, [wpid, proc.pid])) - cpu
            rcpu = sum(map(cpu_seconds, rpid)) - rcpu
            answered = max(results[name][1] + results[name][2], 1)
            cpu_us[server, name] = 1e6 * (cpu + rcpu) / answered
            print(f"{server} {name}: {results[name][0]:,.0f}/s (ok {results[name][1]}, "
                  f"bad {results[name][2]}), server CPU {cpu_us[server, name]:,.0f} us a "
                  "request" + (f" (redis-server {1e6 * rcpu / answered:,.0f} us)" if rpid
                               else ""), flush=True)
            if spy is not None:
                spy.wait(30)
                print(summarize(Path(args.profile) / f"{server}-{name}.txt", args.top),
                      flush=True)
    finally:
        proc.terminate()
        proc.wait(40)
        log.close()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="gunicorn,granian")
    ap.add_argument("--only", default="healthz,cc-rs,cc-es,intro1,introN,saml")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--pool", type=int, default=10000,
                    help="distinct tokens for introN")
    ap.add_argument("--saml-pool", type=int, default=6000,
                    help="fresh AuthnRequests for saml (more than one run answers)")
    ap.add_argument("--store", choices=["memory", "redis"], default="memory",
                    help="the project's store (redis: a redis-server the bench starts)")
    ap.add_argument("--threads", type=int, default=4, help="request threads of the worker")
    ap.add_argument("--profile", help="folder for py-spy profiles")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    table = {}
    for server in args.servers.split(","):
        work = Path(tempfile.mkdtemp(prefix="serve-profile-"))
        try:
            table[server] = run_server(server, args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    servers = list(table)
    print("\n| endpoint | " + " | ".join(f"{s} /s (x floor), CPU us a request" for s in servers)
          + " |")
    print("| --- |" + " ---: |" * len(servers))
    for name in next(iter(table.values())):
        cells = []
        for s in servers:
            rate = table[s][name][0]
            floor = table[s].get("healthz", (0.0, 0, 0))[0]
            cells.append(f"{rate:,.0f}" + (f" ({rate / floor:.2f})" if floor else "")
                         + f", {cpu_us[s, name]:,.0f} us"
                         + (f" [{table[s][name][2]} bad]" if table[s][name][2] else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
