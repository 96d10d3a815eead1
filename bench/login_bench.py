"""Login throughput on one core: the file directory and slapd, with the Redis store.

For each directory it times, in the same run and on the same pinned core:

* baseline: ``Directory.authenticate`` alone (argon2id verify / LDAP search + bind) — the
  cost any IdP pays for that directory;
* full: ``POST /login`` through the Flask app (CSRF check, throttle counters and the session in
  a real Redis, audit record), as a browser sends it;
* password + TOTP: the same person with an authenticator enrolled, ``POST /login`` then
  ``POST /login/mfa`` with a valid code (sealed secret opened, the step spent in Redis, the
  session renewed).

It prints medians over repeats, the ratio full/baseline (how much the IdP adds) and the ratio
password + TOTP / password alone.  Starts its
own ``redis-server`` and ``slapd`` on free loopback ports and stops them.

    .venv/bin/python bench/login_bench.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask.testing import FlaskClient  # noqa: E402

from idp.app import build_components, create_app  # noqa: E402
from idp.audit import Auditor, NullSink, RequestInfo  # noqa: E402
from idp.config import parse_config  # noqa: E402
from idp.demo import USERS_FILE  # noqa: E402
from idp.directory import Directory  # noqa: E402
from idp.mfa import totp  # noqa: E402
from tests.fixtures.redis_server import RedisServer  # noqa: E402
from tests.fixtures.slapd import running_slapd  # noqa: E402


def rate(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def median_rate(fn: Callable[[], None], n: int, repeats: int) -> float:
    fn()  # warm up (connection pools, first hash)
    return statistics.median(rate(fn, n) for _ in range(repeats))


def form_login(client: FlaskClient) -> Callable[[], None]:
    page = client.get("/login").get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m
    data = {"username": "alice", "password": "alice-password", "csrf_token": m.group(1),
            "reauth": "1"}

    def once() -> None:
        r = client.post("/login", data=data)
        assert r.status_code == 303, r.status_code

    return once


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def form_login_totp(client: FlaskClient, clock: list[float]) -> Callable[[], None]:
    """Password, then a code; the service's clock moves 3 steps a sign-in so that every code
    is a new one (a code is accepted once)."""
    password = form_login(client)
    page = client.get("/login").get_data(as_text=True)  # one CSRF cookie for both forms
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m
    token = m.group(1)

    def once() -> None:
        password()
        clock[0] += 3 * totp.STEP
        r = client.post("/login/mfa", data={"method": "totp", "csrf_token": token,
                                             "code": totp.code_at(SECRET, clock[0]),
                                             "next": "/account"})
        assert r.status_code == 303, r.status_code

    return once


def run(name: str, directory_cfg: dict[str, object], redis_url: str, work: Path, n: int,
        repeats: int) -> tuple[str, float, float, float]:
    cfg = parse_config({
        "issuer": "http://127.0.0.1:8000", "secret_key": "b" * 48,
        "store": {"url": redis_url}, "directory": directory_cfg,
        "keys": {"dir": str(work / "keys"), "generate": True}, "audit": {"sink": "none"},
        # the bench signs in thousands of times: keep the throttle out of the way
        "login": {"device_failures_per_hour": 100},
        "mfa": {"enrolments_dir": str(work / f"mfa-{len(name)}")},
    })
    comps = build_components(cfg, auditor=Auditor(NullSink()))
    directory: Directory = comps.directory
    app = create_app(cfg, comps)
    base = median_rate(lambda: directory.authenticate("alice", "alice-password") and None,
                       n, repeats)
    full = median_rate(form_login(app.test_client()), n, repeats)
    assert comps.mfa is not None
    comps.mfa.enrol_totp_secret("alice", SECRET, "bench", RequestInfo())
    clock = [time.time()]
    comps.mfa.clock = lambda: clock[0]
    with_totp = median_rate(form_login_totp(app.test_client(), clock), n, repeats)
    comps.close()
    return name, base, full, with_totp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core; the servers get the other
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = RedisServer(work / "redis").start()
        try:
            with running_slapd(work / "slapd") as slapd:
                ldap = {"type": "ldap", "ldap": slapd.ldap_config().model_dump(mode="json")}
                rows = [
                    run("file directory (argon2id)",
                        {"type": "file", "file": {"path": str(USERS_FILE)}},
                        server.url, work, 20, args.repeats),
                    run("slapd (search + bind)", ldap, server.url, work, 200,
                        args.repeats),
                ]
        finally:
            server.stop()
    print(f"| directory | baseline: Directory.authenticate /s | full POST /login /s "
          f"| full/baseline | password + TOTP /s | TOTP/password alone |  "
          f"(median of {args.repeats}, one core)")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, base, full, with_totp in rows:
        print(f"| {name} | {base:,.0f} | {full:,.0f} | {full / base:.2f} | {with_totp:,.0f} "
              f"| {with_totp / full:.2f} |")


if __name__ == "__main__":
    main()
