"""Soak: mixed load on `idp serve` with a real Redis and a real slapd, for minutes.

    .venv/bin/python bench/soak.py --minutes 5 [--server gunicorn] [--workers 2]
        [--clients 4] [--rate 0]   # --rate: iterations/s over all clients, 0 = as fast as it goes
    .venv/bin/python bench/soak.py --capacity-minutes 1 --load 0.7 --minutes 30 --warmup 900

Each client loops over one iteration of the mix, each step a real protocol exchange over HTTP:

  login        GET /login, POST /login (slapd search + bind, session in Redis)
  saml         IdP-initiated SSO to the built-in AWS SP (signed SAML response)
  assume_saml  POST /sts AssumeRoleWithSAML with that response (temporary credentials)
  caller       POST /sts GetCallerIdentity, SigV4-signed with those credentials
  code_pkce    /oauth2/authorize (consent) + /oauth2/token, demo-web with PKCE S256
  refresh      /oauth2/token grant_type=refresh_token (rotation)
  client_cred  /oauth2/token grant_type=client_credentials
  introspect   /oauth2/introspect of the access token

Every answer is checked (status and the field the step needs); anything else is an error.
Every ``--sample`` seconds it records the RSS of every `idp serve` process (master and
workers, from /proc) and the request count; at the end it prints per-step counts, errors and
p50/p99 latencies, and the RSS series, as Markdown.  "RSS flat after warm-up" is read as:
the workers' RSS in the last fifth of the run is within 5 % of their RSS at the end of the
first fifth (or at ``--warmup`` seconds).  127.0.0.1 only.

To load the service at ~70 % of capacity in one command, ``--capacity-minutes M --load 0.7``
first drives the same server unbounded for M minutes, then soaks at 0.7 x the iterations/s
it measured (the capacity phase is reported apart and not counted in the soak's figures).
At the end it scrapes ``/metrics`` (enabled in the server's config) and prints the server's
own count of answers by status class.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.redis_server import RedisServer  # noqa: E402
from tests.fixtures.servers import free_port, wait_for_port  # noqa: E402
from tests.fixtures.slapd import Slapd, running_slapd  # noqa: E402

IDP = str(Path(sys.executable).parent / "idp")
ACCOUNT = "111122223333"
WEB_URI = "http://127.0.0.1:8400/callback"
WEB_SECRET = "soak-web-secret"
SERVICE_SECRET = "soak-service-secret"
USERS = (("alice", "alice-password"), ("bob", "bob-password"))
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN = r'name="{}" value="([^"]*)"'


def config(port: int, slapd: Slapd, redis_url: str) -> dict[str, Any]:
    """`idp serve`'s config: Redis, slapd, two roles trusting this IdP, two OIDC clients."""
    read = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    return {
        "issuer": f"http://127.0.0.1:{port}",
        "secret_key": "${IDP_SECRET_KEY}",
        "store": {"url": redis_url},
        "directory": {"type": "ldap", "ldap": {
            "url": slapd.url, "bind_dn": slapd.bind_dn, "bind_password": "${LDAP_PASSWORD}",
            "user_base_dn": slapd.people_dn, "timeout": 3.0}},
        "keys": {"dir": "keys", "generate": True},
        "audit": {"sink": "file", "path": "audit.log"},
        "metrics": {"enabled": True},
        "saml": {"service_providers": {"urn:amazon:webservices": {
            "idp_initiated": True, "aws_attributes": True}}},
        "iam": {
            "accounts": [{"id": ACCOUNT}],
            "saml_providers": [{"name": "soak-idp"}],
            "roles": [{"name": "Developer", "inline_policies": {"read": read}}],
            "mapping": [{"role": "Developer", "groups": ["engineering"]}],
        },
        "oidc": {"clients": [
            {"client_id": "soak-web", "client_secret": WEB_SECRET, "redirect_uris": [WEB_URI],
             "require_consent": True},
            {"client_id": "soak-service", "client_secret": SERVICE_SECRET,
             "grant_types": ["client_credentials"], "scopes": ["roles"],
             "require_consent": False},
        ]},
    }


def _field(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    if not m:
        raise AssertionError(f"no {pattern} in {text[:200]!r}")
    return html.unescape(m.group(1))


class Mix:
    """One client's loop of the mix (a browser session and a machine client)."""

    def __init__(self, base: str, user: tuple[str, str]) -> None:
        self.base, self.user = base, user
        self.http = requests.Session()
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # every failure is counted, then the iteration stops
            self.errors[name].append(f"{type(exc).__name__}: {exc}"[:300])
            raise
        self.timings[name].append(time.perf_counter() - started)
        return result

    def iteration(self) -> None:
        b, http = self.base, self.http
        http.cookies.clear()

        def login() -> None:
            page = http.get(f"{b}/login", params={"next": "/account"}, timeout=30)
            r = http.post(f"{b}/login", timeout=30, allow_redirects=False, data={
                "username": self.user[0], "password": self.user[1], "next": "/account",
                "csrf_token": _field(_CSRF.pattern, page.text)})
            assert r.status_code in (302, 303), (r.status_code, r.text[:200])

        def saml() -> str:
            r = http.get(f"{b}/saml/idp-initiated", params={"sp": "urn:amazon:webservices"},
                         timeout=30)
            assert r.status_code == 200, (r.status_code, r.text[:200])
            return _field(_HIDDEN.format("SAMLResponse"), r.text)

        def assume(response: str) -> dict[str, str]:
            r = requests.post(f"{b}/sts", timeout=30, data={
                "Action": "AssumeRoleWithSAML", "Version": "2011-06-15",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/Developer",
                "PrincipalArn": f"arn:aws:iam::{ACCOUNT}:saml-provider/soak-idp",
                "SAMLAssertion": response})
            assert r.status_code == 200, (r.status_code, r.text[:300])
            return {k: _field(f"<{k}>([^<]+)</{k}>", r.text)
                    for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}

        def caller(creds: dict[str, str]) -> None:
            body = "Action=GetCallerIdentity&Version=2011-06-15"
            req = AWSRequest("POST", f"{b}/sts", data=body, headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"],
                                  creds["SessionToken"]), "sts", "us-east-1").add_auth(req)
            r = requests.post(f"{b}/sts", data=body, headers=dict(req.headers), timeout=30)
            assert r.status_code == 200 and "assumed-role/Developer" in r.text, r.text[:300]

        def code_pkce() -> dict[str, Any]:
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            r = http.get(f"{b}/oauth2/authorize", allow_redirects=False, timeout=30, params={
                "client_id": "soak-web", "response_type": "code", "redirect_uri": WEB_URI,
                "scope": "openid email offline_access", "state": "s", "nonce": "n",
                "code_challenge": challenge, "code_challenge_method": "S256"})
            if r.status_code == 200 and 'name="resume"' in r.text:
                r = http.post(f"{b}/oauth2/authorize", allow_redirects=False, timeout=30,
                              data={"csrf_token": _field(_CSRF.pattern, r.text),
                                    "resume": _field(_HIDDEN.format("resume"), r.text),
                                    "decision": "allow"})
            location = r.headers.get("Location") or _field(
                r'href="([^"]+)" id="continue-link"', r.text)
            code = parse_qs(urlsplit(location).query)["code"][0]
            t = requests.post(f"{b}/oauth2/token", auth=("soak-web", WEB_SECRET), timeout=30,
                              data={"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": WEB_URI, "code_verifier": verifier})
            assert t.status_code == 200, (t.status_code, t.text[:300])
            return dict(t.json())

        def refresh(tokens: dict[str, Any]) -> dict[str, Any]:
            t = requests.post(f"{b}/oauth2/token", auth=("soak-web", WEB_SECRET), timeout=30,
                              data={"grant_type": "refresh_token",
                                    "refresh_token": tokens["refresh_token"]})
            assert t.status_code == 200 and "refresh_token" in t.json(), t.text[:300]
            return dict(t.json())

        def client_cred() -> None:
            t = requests.post(f"{b}/oauth2/token", auth=("soak-service", SERVICE_SECRET),
                              data={"grant_type": "client_credentials"}, timeout=30)
            assert t.status_code == 200 and t.json()["access_token"], t.text[:300]

        def introspect(tokens: dict[str, Any]) -> None:
            r = requests.post(f"{b}/oauth2/introspect", auth=("soak-web", WEB_SECRET),
                              data={"token": tokens["access_token"]}, timeout=30)
            assert r.status_code == 200 and r.json()["active"] is True, r.text[:300]

        self.step("login", login)
        response = self.step("saml", saml)
        creds = self.step("assume_saml", lambda: assume(response))
        self.step("caller", lambda: caller(creds))
        tokens = self.step("code_pkce", code_pkce)
        tokens = self.step("refresh", lambda: refresh(tokens))
        self.step("client_cred", client_cred)
        self.step("introspect", lambda: introspect(tokens))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def server_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [master, *sorted(int(p) for p in out.split())]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    redis_srv = RedisServer(work / "redis").start()
    with running_slapd(work / "slapd") as slapd:
        port = free_port()
        cfg = work / "idp.yaml"
        cfg.write_text(yaml.safe_dump(config(port, slapd, redis_srv.url)))
        env = {**os.environ, "IDP_SECRET_KEY": "s" * 48, "LDAP_PASSWORD": slapd.bind_password}
        log = (work / "serve.log").open("wb")
        proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind",
                                 f"127.0.0.1:{port}", "--workers", str(args.workers),
                                 "--server", args.server], cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_port(port, 60)
            except TimeoutError:
                sys.exit((work / "serve.log").read_text()[-3000:])
            return drive(args, f"http://127.0.0.1:{port}", proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
            redis_srv.stop()


def drive(args: argparse.Namespace, base: str, master: int) -> dict[str, Any]:
    capacity = None
    rate = args.rate
    if args.capacity_minutes:
        capacity = phase(args, base, master, args.capacity_minutes, 0.0)
        capacity["rate"] = capacity["iterations"] / capacity["elapsed"]
        rate = round(args.load * capacity["rate"], 1)
        print(f"capacity: {capacity['rate']:.1f} iterations/s, errors: "
              f"{sum(len(v) for v in capacity['errors'].values())}; soak at {rate}/s",
              flush=True)
    result = phase(args, base, master, args.minutes, rate)
    result["rate"], result["capacity"] = rate, capacity
    result["scrape"] = scrape(base)
    return result


def phase(args: argparse.Namespace, base: str, master: int, minutes: float, rate: float
          ) -> dict[str, Any]:
    mixes = [Mix(base, USERS[i % len(USERS)]) for i in range(args.clients)]
    stop = time.monotonic() + minutes * 60
    interval = args.clients / rate if rate else 0.0
    done = [0] * len(mixes)

    def loop(i: int) -> None:
        nxt = time.monotonic()
        while time.monotonic() < stop:
            try:
                mixes[i].iteration()
            except Exception:  # counted by Mix.step
                pass
            done[i] += 1
            if interval:
                nxt += interval
                time.sleep(max(0.0, nxt - time.monotonic()))

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(mixes))]
    started = time.monotonic()
    for t in threads:
        t.start()
    samples: list[dict[str, Any]] = []
    while any(t.is_alive() for t in threads):
        pids = server_pids(master)
        samples.append({"t": round(time.monotonic() - started), "iterations": sum(done),
                        "rss_kb": {str(p): rss_kb(p) for p in pids},
                        "load1": os.getloadavg()[0]})
        for t in threads:
            t.join(timeout=args.sample / max(1, len(threads)))
    elapsed = time.monotonic() - started
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    for m in mixes:
        for k, v in m.timings.items():
            timings[k] += v
        for k, e in m.errors.items():
            errors[k] += e
    return {"elapsed": elapsed, "iterations": sum(done), "timings": timings,
            "errors": errors, "samples": samples}


def scrape(base: str) -> dict[str, float]:
    """The server's own count of HTTP answers by status class, from ``/metrics``."""
    r = requests.get(f"{base}/metrics", timeout=30)
    counts: dict[str, float] = defaultdict(float)
    for line in r.text.splitlines():
        m = re.match(r'idp_http_requests_total\{[^}]*status="(\d)\d\d"[^}]*\} (\S+)', line)
        if m:
            counts[f"{m.group(1)}xx"] += float(m.group(2))
    return dict(sorted(counts.items()))


def report(args: argparse.Namespace, result: dict[str, Any]) -> str:
    it, elapsed = result["iterations"], result["elapsed"]
    lines = [f"{it} iterations in {elapsed:.0f} s ({it / elapsed:.1f}/s, "
             f"{sum(len(v) for v in result['timings'].values()) / elapsed:.0f} steps/s); "
             f"errors: {sum(len(v) for v in result['errors'].values())}", "",
             "| step | ok | errors | p50 ms | p99 ms |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in ("login", "saml", "assume_saml", "caller", "code_pkce", "refresh",
                 "client_cred", "introspect"):
        v = sorted(result["timings"].get(name, []))
        p99 = v[min(len(v) - 1, int(len(v) * 0.99))] * 1000 if v else 0.0
        p50 = statistics.median(v) * 1000 if v else 0.0
        lines.append(f"| {name} | {len(v)} | {len(result['errors'].get(name, []))} | "
                     f"{p50:.1f} | {p99:.1f} |")
    for name, errs in result["errors"].items():
        lines.append(f"\nfirst errors of {name}: {errs[:3]}")
    samples = result["samples"]
    lines += ["", "| t (s) | iterations | RSS MB per process (master, workers) |",
              "| ---: | ---: | --- |"]
    step = max(1, len(samples) // 12)
    picked = samples[::step]
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    for s in picked:
        rss = ", ".join(f"{kb / 1024:.1f}" for kb in s["rss_kb"].values())
        lines.append(f"| {s['t']} | {s['iterations']} | {rss} |")
    if len(samples) >= 10:
        fifth = len(samples) // 5
        warm_at = next((i for i, s in enumerate(samples) if s["t"] >= args.warmup),
                       fifth) if args.warmup else fifth

        def workers(s: dict[str, Any]) -> float:
            return float(sum(list(s["rss_kb"].values())[1:]))

        warm = workers(samples[warm_at])
        late = [workers(s) for s in samples[-fifth:]]
        growth = (max(late) - warm) / warm * 100 if warm else 0.0
        lines.append(f"\nworkers' RSS: {warm / 1024:.1f} MB after warm-up (t="
                     f"{samples[warm_at]['t']} s), at most {max(late) / 1024:.1f} MB in the last "
                     f"fifth ({growth:+.1f} %): {'flat' if growth <= 5 else 'GROWING'}")
    capacity = result.get("capacity")
    if capacity:
        lines.append(f"\ncapacity (unbounded, {args.capacity_minutes:g} min, before the soak): "
                     f"{capacity['rate']:.1f} iterations/s, errors: "
                     f"{sum(len(v) for v in capacity['errors'].values())}; soak rate "
                     f"{args.load:g} x = {result['rate']}/s")
    if result.get("scrape"):
        lines.append(f"\nthe server's /metrics, HTTP answers by status class (capacity phase "
                     f"included): {', '.join(f'{k} {v:.0f}' for k, v in result['scrape'].items())}")
    loads = [s["load1"] for s in samples]
    lines.append(f"\nmachine's 1-minute load average during the soak (2 CPUs shared): min "
                 f"{min(loads):.1f}, median {statistics.median(loads):.1f}, max {max(loads):.1f}")
    lines.append(f"\n{platform.python_implementation()} {platform.python_version()}, "
                 f"{os.cpu_count()} CPUs, {args.server} --workers {args.workers}, "
                 f"{args.clients} clients, rate {result.get('rate') or 'unbounded'}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--server", choices=["gunicorn", "granian"], default="gunicorn")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rate", type=float, default=0.0, help="iterations/s over all clients")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    p.add_argument("--capacity-minutes", type=float, default=0.0,
                   help="first measure capacity (unbounded) for this long on the same server, "
                        "then soak at --load x that rate (overrides --rate)")
    p.add_argument("--load", type=float, default=0.7, help="fraction of the measured capacity")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="seconds of warm-up before the RSS baseline (default: a fifth of the run)")
    p.add_argument("--json", type=Path, help="also write the raw result here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="idp-soak-") as tmp:
        result = run(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, default=list))
    print(report(args, result), flush=True)
    if any(result["errors"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
