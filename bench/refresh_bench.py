"""Refresh grants per second with and without the directory re-check, file directory and
slapd, one core for the IdP process.

A refresh grant reads the person from the directory again (gone or disabled: refused; groups
re-read and roles re-mapped) and checks the person's revocation marker.  "without" turns the
directory look-up off in the same running provider (``ClaimBuilder.people = None``), so the
difference is the directory's share.  Each grant rotates the refresh token; the requests go
over HTTP to a live werkzeug server in this process, store ``memory://``.  Starts its own
slapd and stops it.

    .venv/bin/python bench/refresh_bench.py [--grants 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from idp.config import parse_config  # noqa: E402
from idp.demo import USERS_FILE  # noqa: E402
from tests.fixtures.live import live_idp  # noqa: E402
from tests.fixtures.servers import free_port  # noqa: E402
from tests.fixtures.slapd import running_slapd  # noqa: E402
from tests.oidc import rp  # noqa: E402

CLI = rp.cli_redirect()


def grants_per_second(url: str, token: str, n: int) -> tuple[float, str]:
    http = requests.Session()
    start = time.perf_counter()
    for _ in range(n):
        r = http.post(f"{url}/oauth2/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": token, "client_id": "demo-cli"})
        assert r.status_code == 200, r.text
        token = r.json()["refresh_token"]
    return n / (time.perf_counter() - start), token


def run(name: str, directory: dict[str, object], work: Path, n: int,
        repeats: int) -> tuple[str, float, float]:
    port = free_port()
    config = parse_config({
        "issuer": f"http://127.0.0.1:{port}", "secret_key": "b" * 48,
        "store": {"url": "memory://"}, "directory": directory,
        "keys": {"dir": str(work / "keys"), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(work / "metadata")]})
    with live_idp(config, demo=True, port=port) as idp:
        _, tokens, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="alice")
        token = tokens["refresh_token"]
        claims = idp.components.extras["oidc"].core.claims
        people = claims.people
        with_dir, without = [], []
        _, token = grants_per_second(idp.url, token, 20)  # warm up
        for _ in range(repeats):
            claims.people = people
            rate, token = grants_per_second(idp.url, token, n)
            with_dir.append(rate)
            claims.people = None
            rate, token = grants_per_second(idp.url, token, n)
            without.append(rate)
        claims.people = people
    return name, statistics.median(with_dir), statistics.median(without)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--grants", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per grant
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core; slapd gets the other
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        users = work / "users.yaml"
        shutil.copyfile(USERS_FILE, users)
        rows = [run("file directory", {"type": "file", "file": {"path": str(users)}}, work,
                    args.grants, args.repeats)]
        with running_slapd(work / "slapd") as slapd:
            ldap = {"type": "ldap", "ldap": slapd.ldap_config().model_dump(mode="json")}
            rows.append(run("slapd (search + group read)", ldap, work, args.grants,
                            args.repeats))
    print(f"| directory | with re-check /s | without /s | with/without |  (median of "
          f"{args.repeats} x {args.grants} grants, one core)")
    print("| --- | ---: | ---: | ---: |")
    for name, with_dir, without in rows:
        print(f"| {name} | {with_dir:,.0f} | {without:,.0f} | {with_dir / without:.2f} |")


if __name__ == "__main__":
    main()
