"""Side by side: the project's `idp serve` vs SimpleSAMLphp (SAML SSO) and node-oidc-provider
(client_credentials grants, introspection), on one machine with one load generator.

Every server runs on the servers' core (``taskset -c PEERS_SERVER_CPU``, with the kit's Redis);
wrk (``-t1 -c8``, lib/check.lua) and this driver run on the load core. All servers are up for
the whole run and the rounds interleave them: in each round every measurement of every side runs
once, so a slow moment of the machine hits every side alike. Every response is checked (status
200 and the expected text), one answer of each side is checked in full before the clock starts,
and the run exits non-zero when a response was bad or a socket error happened.

    run.sh saml|oidc|all [--only SIDES,ROWS] [--store memory|redis|both] [--repeats N]
                         [--seconds S] ...      (run.sh saml --help for every option)
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

import kit  # noqa: E402
from kit import Request, Server  # noqa: E402

kit.need_project()

import oauth  # noqa: E402  (these need the project's virtualenv: cryptography, lxml, xmlsec)
import saml  # noqa: E402
import ssp  # noqa: E402

PEER_SIDES = ("ssp", "node")
PROJECT_SIDES = ("idp", "gunicorn", "granian")  # idp = `idp serve` with its default --server
NODE_FORMATS = (("jwt-RS256", "jwt", "RS256"), ("jwt-ES256", "jwt", "ES256"),
                ("opaque", "opaque", "RS256"))
CLIENT_SECRET = "peers-client-secret"
PROJECT_CLIENTS = {"RS256": "bench-rs", "ES256": "bench-es", "opaque": "bench-opaque"}


@dataclass(frozen=True)
class Row:
    """One line of the table: what the project does, and which measurement of a peer it is
    set against (None: the project only)."""

    name: str
    label: str
    peer: tuple[str, str] | None
    group: str


ROWS = (
    Row("saml", "SAML SP-initiated SSO, session exists (signed AuthnRequest in, Response + "
        "Assertion signed out)", ("ssp", "saml"), "saml"),
    Row("cc-RS256", "client_credentials, RS256 JWT", ("node", "cc-jwt-RS256"), "oidc"),
    Row("cc-ES256", "client_credentials, ES256 JWT", ("node", "cc-jwt-ES256"), "oidc"),
    Row("cc-opaque", "client_credentials, opaque token", ("node", "cc-opaque"), "oidc"),
    Row("intro1-RS256", "introspection, one token repeated (node: opaque; idp: RS256 JWT)",
        ("node", "intro1-opaque"), "oidc"),
    Row("introN-RS256", "introspection, {pool} distinct tokens in turn (node: opaque; idp: "
        "RS256 JWT)", ("node", "introN-opaque"), "oidc"),
    Row("intro1-opaque", "introspection, one opaque token repeated", ("node", "intro1-opaque"),
        "oidc"),
    Row("introN-opaque", "introspection, {pool} distinct opaque tokens in turn",
        ("node", "introN-opaque"), "oidc"),
    Row("healthz", "HTTP floor: `GET /healthz`", None, "floor"),
)
ROW_NAMES = {r.name for r in ROWS}


@dataclass
class Measure:
    """One thing measured on one side: a request file (or a maker of fresh ones), the text a
    good response contains, and the runs."""

    side: str
    op: str
    server: Server
    port: int
    expect: str
    requests: Path | None = None
    fresh: Any = None  # callable making a fresh request file (SAML: distinct AuthnRequests)
    runs: list[dict[str, Any]] = field(default_factory=list)


class Run:
    """One run of the kit: start every side, check one answer of each, interleave the rounds,
    print the table and write the JSON results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = kit.work()
        self.servers: list[Server] = []
        self.measures: list[Measure] = []
        self.results: dict[str, Any] = {
            "command": os.environ.get("PEERS_COMMAND") or shlex.join(sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "args": vars(args), "versions": kit.versions(), "openssl_rsa2048_sign_s": [],
            "checked": {}, "skipped": {}}
        self.sp: saml.ServiceProvider | None = None
        self.redis_port = self.redis_pid = 0
        self.ssp_base = ""
        self.default_server = self._default_server()

    # ---------------------------------------------------------------- what to run
    def sides(self) -> list[str]:
        """The sides to run, the project's once per store (``gunicorn/redis``...)."""
        out = []
        for s in self.args.sides:
            if s in PROJECT_SIDES:
                stores = ["memory", "redis"] if self.args.store == "both" else [self.args.store]
                out += [f"{s}/{store}" for store in stores]
            else:
                out.append(s)
        return out

    def wants(self, op_group: str) -> bool:
        return any(r.group == op_group for r in self.args.rows)

    def row_wanted(self, name: str) -> bool:
        return any(r.name == name for r in self.args.rows)

    # ---------------------------------------------------------------- project servers
    @staticmethod
    def _default_server() -> str:
        text = subprocess.run([str(kit.IDP), "serve", "--help"], capture_output=True,
                              text=True).stdout
        flat = " ".join(text.split())
        m = (re.search(r"--server \[[^\]]*\].*?\[default:\s*(\w+)\]", flat)
             or re.search(r"--server \[[^\]]*\].*?Default:\s*(\w+)", flat))
        return m.group(1) if m else "?"

    def project_config(self, name: str, port: int, store_url: str, opaque: bool) -> Path:
        folder = kit.work("idp", name.replace("/", "-"))
        opaque_client = f"""
    - {{client_id: bench-opaque, client_secret: {CLIENT_SECRET}, grant_types: [client_credentials],
       scopes: [roles], require_consent: false, access_token_format: opaque}}""" if opaque else ""
        cfg = folder / "config.yaml"
        metadata = self.sp.metadata_dir if self.sp else folder / "no-metadata"
        metadata.mkdir(parents=True, exist_ok=True)
        cfg.write_text(f"""# written by bench/peers/compare.py for one run
issuer: http://127.0.0.1:{port}
secret_key: {"p" * 48}
store: {{url: "{store_url}"}}
directory: {{type: file, file: {{path: {kit.USERS}}}}}
keys: {{dir: {kit.work("idp", "keys")}, generate: true}}
audit: {{sink: {self.args.audit}, path: {folder / "audit.log"}}}
session: {{idle_timeout: 14400, absolute_timeout: 28800}}
metadata_dirs: [{metadata}]
oidc:
  access_token_ttl: 3600
  clients:
    - {{client_id: bench-rs, client_secret: {CLIENT_SECRET}, grant_types: [client_credentials],
       scopes: [roles], require_consent: false, access_token_alg: RS256}}
    - {{client_id: bench-es, client_secret: {CLIENT_SECRET}, grant_types: [client_credentials],
       scopes: [roles], require_consent: false, access_token_alg: ES256}}{opaque_client}
""")
        return cfg

    def opaque_supported(self) -> bool:
        """Does the project take a per-client ``access_token_format: opaque``? Asked of its
        own config check; when it refuses, the opaque rows are skipped with its reason."""
        cfg = self.project_config("probe", kit.free_port(), "memory://", opaque=True)
        check = subprocess.run([str(kit.IDP), "config", "check", str(cfg)], capture_output=True,
                               text=True, timeout=120)
        if check.returncode == 0:
            return True
        lines = (check.stdout + check.stderr).strip().splitlines()
        reason = next((ln.strip(" -") for ln in lines if "access_token_format" in ln),
                      lines[-1] if lines else f"exit {check.returncode}")
        self.results["skipped"]["idp opaque rows"] = reason
        print(f"skipping the project's opaque rows: its config check refuses the client "
              f"option `access_token_format: opaque`: {reason}", flush=True)
        return False

    def start_redis(self) -> str:
        folder = kit.work("redis")
        for f in folder.glob("**/*"):
            if f.is_file():
                f.unlink()
        port = kit.free_port()
        # as the project's docker-compose.yml runs it in production: every write to the
        # append-only file before Redis answers, no eviction
        srv = Server("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                               "--dir", str(folder), "--appendonly", "yes",
                               "--appendfsync", self.args.redis_fsync,
                               "--maxmemory-policy", "noeviction"],
                     folder / "redis.log")
        self.servers.append(srv)
        for _ in range(100):
            ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                  text=True)
            if ping.stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        else:
            raise SystemExit("redis-server did not start: see " + str(folder / "redis.log"))
        self.redis_port, self.redis_pid = port, srv.pid
        self.results["versions"]["redis"] = kit.output(["redis-server", "--version"])
        self.results["redis"] = {"port": port, "appendonly": "yes",
                                 "appendfsync": self.args.redis_fsync}
        return f"redis://127.0.0.1:{port}"

    def start_project(self, side: str, redis_url: str, opaque: bool, db: int) -> None:
        server, store = side.split("/")
        port = kit.free_port()
        url = "memory://" if store == "memory" else f"{redis_url}/{db}"
        cfg = self.project_config(side, port, url, opaque)
        cmd = [str(kit.IDP), "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
               "--workers", "1", "--threads", "4"]
        if server != "idp":
            cmd += ["--server", server]
        log = cfg.parent / "server.log"
        srv = Server(side, cmd, log)
        self.servers.append(srv)
        base = f"http://127.0.0.1:{port}"
        srv.wait_http(base + "/healthz")
        print(f"{side}: {shlex.join(cmd[1:])} (pid {srv.pid})", flush=True)
        if self.row_wanted("healthz"):
            self.measure(side, "healthz", srv, port, [Request("GET", "/healthz")],
                         probe=base + "/healthz",
                         candidates=['"status":"ok"', '"status": "ok"'])
        if self.wants("saml"):
            self.prepare_saml(side, srv, port, f"{base}/saml/sso", self.project_login(base),
                              self.project_cert(base))
        if self.wants("oidc"):
            algs = ["RS256", "ES256"] + (["opaque"] if opaque else [])
            for alg in algs:
                auth = oauth.basic(PROJECT_CLIENTS[alg], CLIENT_SECRET)
                kind = "opaque" if alg == "opaque" else "jwt"
                self.prepare_oauth(side, srv, port, base, "/oauth2/token", "/oauth2/introspect",
                                   base + "/oauth2/jwks", auth, kind, alg,
                                   intro=alg != "ES256")

    @staticmethod
    def project_login(base: str) -> list[str]:
        import requests  # from the project's virtualenv

        cookies = []
        for _ in range(8):
            s = requests.Session()
            page = s.get(base + "/login", timeout=30).text
            m = re.search(r'name="csrf_token" value="([^"]+)"', page)
            if not m:
                raise SystemExit("no csrf_token on the project's sign-in page")
            r = s.post(base + "/login", data={"username": "alice", "password": "alice-password",
                                              "csrf_token": m.group(1), "next": "/account"},
                       timeout=30)
            if r.status_code != 200 or "alice" not in r.text:
                raise SystemExit(f"alice could not sign in to {base}: HTTP {r.status_code}")
            cookies.append("; ".join(f"{c.name}={c.value}" for c in s.cookies))
        return cookies

    @staticmethod
    def project_cert(base: str) -> bytes:
        md = urllib_request_get(base + "/saml/metadata")
        m = re.search(r"<ds:X509Certificate>([^<]+)<", md)
        if not m:
            raise SystemExit("no certificate in the project's SAML metadata")
        return saml.pem_from_b64(m.group(1))

    # ---------------------------------------------------------------- peers
    def start_ssp(self) -> None:
        assert self.sp is not None
        port = kit.free_port()
        folder = kit.work("ssp")
        conf = ssp.write(folder, port, self.sp.cert_pem)
        srv = Server("ssp", ["/usr/sbin/apache2", "-f", str(conf), "-DFOREGROUND"],
                     folder / "apache.out")
        self.servers.append(srv)
        base = f"http://127.0.0.1:{port}"
        srv.wait_http(base + "/simplesaml/saml2/idp/metadata.php")
        sso = base + "/simplesaml/saml2/idp/SSOService.php"
        print(f"ssp: SimpleSAMLphp under Apache prefork + mod_php (pid {srv.pid})", flush=True)
        cookies = [self.ssp_login(base, sso) for _ in range(8)]
        self.ssp_base = base
        self.prepare_saml("ssp", srv, port, sso, cookies,
                          (folder / "cert" / "idp.crt.pem").read_bytes())
        self.results["versions"].update({p: kit.debian_version(p) for p in (
            "simplesamlphp", "apache2", "libapache2-mod-php8.2")})

    def ssp_login(self, base: str, sso: str) -> str:
        import requests

        assert self.sp is not None
        s = requests.Session()
        r = s.get(sso + "?" + self.sp.authn_request(sso)[1], timeout=30)
        m = re.search(r'name="AuthState" value="([^"]+)"', r.text)
        if not m:
            raise SystemExit("no SimpleSAMLphp sign-in form: " + r.text[:600])
        r = s.post(base + "/simplesaml/module.php/core/loginuserpass.php",
                   data={"username": "alice", "password": "alice-password",
                         "AuthState": html.unescape(m.group(1))}, timeout=30)
        saml.response_from_form(r.text)
        return "; ".join(f"{c.name}={c.value}" for c in s.cookies)

    def start_node(self, node_dir: Path) -> None:
        for tag, fmt, alg in NODE_FORMATS:
            if not any(self.row_wanted(r.name) for r in ROWS
                       if r.peer and r.peer[1].endswith(tag)):
                continue
            port = kit.free_port()
            srv = Server(f"node-{tag}", ["node", "server.mjs"],
                         kit.work("node") / f"node-{tag}.log",
                         {"PORT": str(port), "ALG": alg, "FORMAT": fmt, "TOKEN_TTL": "3600",
                          "NODE_ENV": "production"}, cwd=node_dir)
            self.servers.append(srv)
            base = f"http://127.0.0.1:{port}"
            srv.wait_http(base + "/.well-known/openid-configuration")
            print(f"node {tag}: node-oidc-provider (pid {srv.pid})", flush=True)
            auth = oauth.basic("bench-service", "bench-service-secret")
            self.prepare_oauth("node", srv, port, base, "/token", "/token/introspection",
                               base + "/jwks", auth, fmt, tag, intro=fmt == "opaque")

    # ---------------------------------------------------------------- measurements
    def measure(self, side: str, op: str, srv: Server, port: int, requests: list[Request],
                probe: str | None = None, candidates: list[str] | None = None,
                expect: str = "", probe_body: str | None = None,
                probe_auth: str | None = None) -> None:
        if probe and candidates:
            raw = http_raw(probe, probe_body, probe_auth)
            found = [c for c in candidates if c in raw]
            if not found:
                raise SystemExit(f"{side} {op}: none of {candidates} in {raw[:300]}")
            expect = found[0]
        path = kit.work("requests") / f"{side.replace('/', '-')}-{op}.reqs"
        self.measures.append(Measure(side, op, srv, port, expect,
                                     requests=kit.write_requests(path, requests)))

    def prepare_saml(self, side: str, srv: Server, port: int, sso: str, cookies: list[str],
                     cert: bytes) -> None:
        import requests

        assert self.sp is not None
        sp = self.sp
        rid, query = sp.authn_request(sso)
        r = requests.get(sso + "?" + query, headers={"Cookie": cookies[0]}, timeout=30)
        info = saml.check_response(saml.response_from_form(r.text), cert, rid)
        info["html_bytes"] = len(r.content)
        self.results["checked"][f"{side} saml"] = info
        print(f"  {side} saml: one response checked: {json.dumps(info)[:300]}", flush=True)
        path = urllib.parse.urlsplit(sso).path
        n = self.args.per_round or int(self.args.seconds * 2500) + 1000
        out = kit.work("requests") / f"{side.replace('/', '-')}-saml.reqs"

        def fresh() -> Path:
            return kit.write_requests(out, [
                Request("GET", f"{path}?{sp.authn_request(sso)[1]}",
                        {"Cookie": cookies[i % len(cookies)]}) for i in range(n)])
        self.measures.append(Measure(side, "saml", srv, port, 'name="SAMLResponse"',
                                     fresh=fresh))

    def prepare_oauth(self, side: str, srv: Server, port: int, base: str, token: str,
                      introspect: str, jwks: str, auth: str, kind: str, tag: str,
                      intro: bool) -> None:
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        cc = f"cc-{tag}"
        if self.row_wanted("cc-" + tag.removeprefix("jwt-")):
            info = oauth.describe(base + token, base + introspect, jwks, base, auth, kind)
            self.results["checked"][f"{side} {cc}"] = info
            print(f"  {side} {cc}: one token checked: {json.dumps(info)[:300]}", flush=True)
            self.measure(side, cc, srv, port, [Request("POST", token, headers, oauth.GRANT)],
                         expect='"access_token"')
        if not intro:
            return
        which = "opaque" if kind == "opaque" else tag
        for op, n in ((f"intro1-{which}", 1), (f"introN-{which}", self.args.pool)):
            # node's opaque introspection is the peer of the project's JWT rows too
            if not any(self.row_wanted(r.name) for r in ROWS if r.name.startswith(op[:6])
                       and (side == "node" or r.name == op)):
                continue
            tokens = oauth.mint(base + token, auth, n)
            bodies = ["token=" + urllib.parse.quote(t, safe="") for t in tokens]
            self.measure(side, op, srv, port, [Request("POST", introspect, headers, b)
                                               for b in bodies],
                         probe=base + introspect, probe_body=bodies[-1], probe_auth=auth,
                         candidates=['"active":true', '"active": true'])
            print(f"  {side} {op}: {n} token(s) made", flush=True)

    def run_rounds(self) -> None:
        a = self.args
        order = [r.name for r in ROWS]

        def rank(m: Measure) -> tuple[int, int]:
            project_op = {"cc-jwt-RS256": "cc-RS256", "cc-jwt-ES256": "cc-ES256",
                          "intro1-opaque": "intro1-opaque", "introN-opaque": "introN-opaque"}
            op = project_op.get(m.op, m.op) if m.side == "node" else m.op
            return (order.index(op) if op in order else len(order), 0)
        self.measures.sort(key=rank)
        print(f"\nwarm-up: {a.warmup:g} s of each of {len(self.measures)} measurements",
              flush=True)
        for m in self.measures:
            if a.warmup > 0:
                req = m.fresh() if m.fresh else m.requests
                assert req is not None
                kit.wrk(m.port, req, m.expect, a.warmup, a.connections, m.server.pid)
        for rnd in range(1, a.repeats + 1):
            for m in self.measures:
                req = m.fresh() if m.fresh else m.requests
                assert req is not None
                counted = m.side.endswith("/redis")
                before = self.redis_commands() if counted else 0
                cpu = kit.cpu_seconds(self.redis_pid) if counted else 0.0
                r = kit.wrk(m.port, req, m.expect, a.seconds, a.connections, m.server.pid)
                if counted:
                    r["redis_cpu_s"] = round(kit.cpu_seconds(self.redis_pid) - cpu, 2)
                    # the kit's Redis serves one loaded side at a time: its command count
                    # over the run, per request, is that side's round trips per request
                    spent = self.redis_commands() - before - 1  # the first INFO call
                    r["redis_commands_per_request"] = round(spent / max(r["requests"], 1), 2)
                m.runs.append(r)
                flag = "" if r["bad"] + r["sockerr"] == 0 else "  <-- ERRORS " + r.get(
                    "stderr", "")[:300]
                print(f"round {rnd} {m.side:16} {m.op:14} {r['rate']:>9,.0f}/s  good "
                      f"{r['good']:.0f} bad {r['bad']:.0f} sockerr {r['sockerr']:.0f} wrapped "
                      f"{r['wrapped']:.0f} server CPU {r['server_cpu_s']:.1f} s{flag}",
                      flush=True)
            rate = kit.openssl_rsa2048()
            self.results["openssl_rsa2048_sign_s"].append(rate)
            print(f"openssl speed rsa2048 on core {kit.SERVER_CPU}: {rate:,.0f} signs/s",
                  flush=True)

    def redis_commands(self) -> int:
        info = subprocess.run(["redis-cli", "-p", str(self.redis_port), "info", "stats"],
                              capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"^total_commands_processed:(\d+)", info, re.M)
        return int(m.group(1)) if m else 0

    # ---------------------------------------------------------------- report
    def grid(self, med: dict[tuple[str, str], dict[str, Any]], project: list[str],
             stores: list[str], heads: dict[str, str], key: str, unit: str) -> list[str]:
        """The Markdown table of one figure (``rate`` or ``per_cpu``) with ratios to the peer."""
        lines = ["| " + " | ".join(["operation", "store", "peer", *(heads[s] for s in project)])
                 + " |", "| --- | --- | ---: |" + " ---: |" * len(project)]
        if not project:
            stores = ["n/a"]
        for row in self.args.rows:
            peer_txt, peer = "n/a", None
            if row.peer:
                p = med.get(row.peer)
                peer_txt = "-"
                if p:
                    peer = p[key]
                    who = {"ssp": "SimpleSAMLphp", "node": "node-oidc-provider"}[row.peer[0]]
                    peer_txt = f"{who}: {peer:,.0f}{unit}"
            for store in stores:
                cells = []
                for s in project:
                    m = med.get((f"{s}/{store}", row.name))
                    if not m:
                        cells.append("skipped" if f"{s}/{store}" in self.sides() else "-")
                    elif peer:
                        cells.append(f"{m[key]:,.0f}{unit} ({m[key] / peer:.2f}x)")
                    else:
                        cells.append(f"{m[key]:,.0f}{unit}")
                if all(c in ("-", "skipped") for c in cells) and not peer:
                    continue
                label = row.label.format(pool=f"{self.args.pool:,}")
                lines.append("| " + " | ".join([label, store, peer_txt, *cells]) + " |")
        return lines

    def report(self) -> int:
        med: dict[tuple[str, str], dict[str, Any]] = {}
        for m in self.measures:
            s = kit.summary(m.runs)
            per = [r["redis_commands_per_request"] for r in m.runs
                   if "redis_commands_per_request" in r]
            if per:
                s["redis_commands_per_request"] = sorted(per)[len(per) // 2]
            med[(m.side, m.op)] = s
            self.results.setdefault("measured", {})[f"{m.side} {m.op}"] = {**s, "runs": m.runs}
        rsa_rates = sorted(self.results["openssl_rsa2048_sign_s"])
        rsa = rsa_rates[len(rsa_rates) // 2] if rsa_rates else 0.0
        project = [s for s in self.args.sides if s in PROJECT_SIDES]
        stores = ["memory", "redis"] if self.args.store == "both" else [self.args.store]
        heads = {"idp": f"`idp serve` (default: {self.default_server})",
                 "gunicorn": "`--server gunicorn`", "granian": "`--server granian`"}
        lines = [
            f"Command: `{self.results['command']}`",
            "",
            f"Measured commit {self.results['versions']['commit'].split()[0]} "
            f"({self.results['versions']['tree']} tree) on {time.strftime('%Y-%m-%d')}; "
            f"`openssl speed -seconds 2 rsa2048` on the servers' core: median "
            f"{rsa:,.0f} signs/s over the run ({', '.join(f'{r:,.0f}' for r in rsa_rates)}); "
            f"medians of {self.args.repeats} interleaved rounds of {self.args.seconds:g} s, "
            f"`wrk -t1 -c{self.args.connections}`; each project server `--workers 1 "
            f"--threads 4`, audit to a file, access log on. Cells: requests/s (ratio to the "
            f"peer).",
            "",
            *self.grid(med, project, stores, heads, "rate", "/s"),
            "",
            "The same runs in requests per CPU-second of the server's processes (Redis's own "
            "CPU time included on the Redis rows): the work per request, less sensitive to "
            "what else the machine runs.",
            "",
            *self.grid(med, project, stores, heads, "per_cpu", ""),
        ]
        errors = sum(s["bad"] + s["sockerr"] for s in med.values())
        wrapped_saml = sum(s["wrapped"] for (side, op), s in med.items() if op == "saml")
        lines += ["", f"Responses checked: {sum(s['good'] + s['bad'] for s in med.values()):,}; "
                      f"bad responses and socket errors: {errors}."
                      + (f" SAML request files wrapped {wrapped_saml} times (raise --per-round)."
                         if wrapped_saml else "")]
        per_req = {f"{side.split('/')[0]} {op}": s["redis_commands_per_request"]
                   for (side, op), s in med.items() if "redis_commands_per_request" in s}
        if per_req:
            lines.append("Redis commands per request (`INFO stats` over each run): "
                         + ", ".join(f"{k} {v:g}" for k, v in per_req.items()) + ".")
        for what, why in self.results["skipped"].items():
            lines.append(f"Skipped {what}: {why}")
        table = "\n".join(lines)
        self.results["table"] = table
        out = kit.work("results") / f"results-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out.write_text(json.dumps(self.results, indent=1, default=str))
        print("\n" + table + "\n\nresults: " + str(out), flush=True)
        if errors:
            print(f"FAILED: {errors} bad responses or socket errors", file=sys.stderr)
            return 1
        return 0

    # ---------------------------------------------------------------- the whole run
    def main(self) -> int:
        a = self.args
        v = self.results["versions"]
        print(f"measuring {v['checkout']} at {v['commit']} ({v['tree']} tree)", flush=True)
        rate = kit.openssl_rsa2048()
        self.results["openssl_rsa2048_sign_s"].append(rate)
        print(f"openssl speed rsa2048 on core {kit.SERVER_CPU}: {rate:,.0f} signs/s", flush=True)
        for sub in ("requests", "idp", "ssp/log", "node"):
            clear(kit.WORK / sub)
        try:
            if self.wants("saml"):
                self.sp = saml.ServiceProvider(kit.work("sp"))
            sides = self.sides()
            if "ssp" in sides and self.wants("saml"):
                self.start_ssp()
            if "node" in sides and self.wants("oidc"):
                self.results["versions"].update(node_versions(a.node_dir))
                self.start_node(a.node_dir)
            project = [s for s in sides if "/" in s]
            if project:
                opaque = self.wants("oidc") and any(
                    self.row_wanted(r) for r in ("cc-opaque", "intro1-opaque", "introN-opaque")
                ) and self.opaque_supported()
                redis_url = self.start_redis() if any(s.endswith("/redis")
                                                      for s in project) else ""
                for db, side in enumerate(project, 1):
                    self.start_project(side, redis_url, opaque, db)
            self.run_rounds()
            if "ssp" in sides and self.wants("saml"):
                info = oauth.get_json(self.ssp_base + "/peers-info/opcache.php")
                self.results["ssp opcache"] = info
                print("SimpleSAMLphp PHP opcache:", info, flush=True)
        finally:
            for srv in reversed(self.servers):
                srv.stop()
        return self.report()


def http_raw(url: str, body: str | None, auth: str | None) -> str:
    """One request's raw response body (to learn how a side spells its JSON)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    if auth:
        headers["Authorization"] = auth
    conn.request("POST" if body else "GET", u.path, body, headers)
    raw = conn.getresponse().read().decode(errors="replace")
    conn.close()
    return raw


def urllib_request_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        text: str = r.read().decode()
        return text


def clear(folder: Path) -> None:
    """Remove the previous run's request files and server logs (results stay)."""
    if folder.is_dir():
        for f in folder.rglob("*"):
            if f.is_file() and f.suffix in (".reqs", ".log", ".out"):
                f.unlink()


def node_versions(node_dir: Path) -> dict[str, str]:
    pkg = node_dir / "node_modules" / "oidc-provider" / "package.json"
    if not pkg.exists():
        raise SystemExit(f"no {pkg}: run `bench/peers/run.sh setup` first")
    return {"node": kit.output(["node", "--version"]),
            "oidc-provider": json.loads(pkg.read_text())["version"]}


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="run.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["saml", "oidc", "all"])
    ap.add_argument("--only", default="",
                    help="comma-separated sides (ssp, node, idp, gunicorn, granian; idp is "
                         "`idp serve` with its default --server) and/or rows (saml, healthz, "
                         "cc-RS256, cc-ES256, cc-opaque, intro1-RS256, introN-RS256, "
                         "intro1-opaque, introN-opaque; or a prefix: cc, intro)")
    ap.add_argument("--store", choices=["memory", "redis", "both"], default="both",
                    help="the project's store (Redis: one redis-server the kit starts)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--seconds", type=float, default=5, help="length of one wrk run")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of each before round 1")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--pool", type=int, default=10000,
                    help="distinct tokens of the introspection-in-turn rows")
    ap.add_argument("--per-round", type=int, default=0,
                    help="distinct AuthnRequests a SAML run (default: 2,500 x seconds + 1,000)")
    ap.add_argument("--audit", choices=["file", "none"], default="file",
                    help="the project's audit sink (none: to size the audit record's cost)")
    ap.add_argument("--redis-fsync", choices=["always", "everysec"], default="always",
                    help="the kit Redis's appendfsync (always: as docker-compose.yml)")
    ap.add_argument("--node-dir", type=Path, default=kit.WORK / "oidc-node",
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    groups = {"saml": {"saml", "floor"}, "oidc": {"oidc", "floor"},
              "all": {"saml", "oidc", "floor"}}[args.what]
    tokens = [t.strip() for t in args.only.split(",") if t.strip()]
    side_tokens = [t for t in tokens if t in PEER_SIDES + PROJECT_SIDES]
    row_tokens = [t for t in tokens if t not in side_tokens]
    for t in row_tokens:
        if not any(r.name == t or r.name.startswith(t) for r in ROWS):
            ap.error(f"--only: `{t}` is neither a side nor a row")
    args.sides = side_tokens or list(PEER_SIDES + PROJECT_SIDES)
    args.rows = [r for r in ROWS if r.group in groups and (
        not row_tokens or any(r.name == t or r.name.startswith(t) for t in row_tokens))]
    if not args.rows:
        ap.error(f"--only selects no row of `{args.what}`")
    return args


if __name__ == "__main__":
    sys.exit(Run(parse(sys.argv[1:])).main())
