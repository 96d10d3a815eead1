"""Start-up of ``idp credentials`` with a cached credential: botocore runs the
``credential_process`` on every client creation, so this is added to each one.

Times, in the same run, the wall time of (medians over ``--runs`` starts each):

* ``python -c pass``: the interpreter alone (the floor of any Python credential_process);
* ``idp credentials --profile bench`` with a fresh cached credential (no network);
* ``python -c "import idp.cli"``: what the command would cost if it loaded the server's
  command (click, pydantic, the config models) before answering.

No server is needed: the profile and the cache are written into a temporary ``IDP_HOME``.

    .venv/bin/python bench/cli_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idp.client.store import Profile, cache_path, save_profile, write_private  # noqa: E402

IDP = str(Path(sys.executable).parent / "idp")


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run(argv, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
        if r.returncode != 0:
            raise SystemExit(f"{argv}: {r.stderr.decode()}")
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "IDP_HOME": home, "IDP_KEYRING": "off"}
        os.environ.update(env)
        prof = Profile("bench", "https://idp.example.org", "idp-cli",
                       "arn:aws:iam::111122223333:role/ReadOnly")
        save_profile(prof)
        exp = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        write_private(cache_path(prof, prof.role_arn or "", None), {
            "Version": 1, "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
            "SecretAccessKey": "s" * 40, "SessionToken": "t" * 64, "Expiration": exp})
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("idp credentials (cached)", [IDP, "credentials", "--profile", "bench"]),
            ("python -m idp.client credentials (cached)",
             [sys.executable, "-m", "idp.client", "credentials", "--profile", "bench"]),
            ('python -c "import idp.cli" (server command, for comparison)',
             [sys.executable, "-c", "import idp.cli"]),
        ]
        timed(rows[1][1], env, 3)  # warm the file cache
        print(f"{'command':58} median ms ({args.runs} runs)")
        for name, argv in rows:
            print(f"{name:58} {timed(argv, env, args.runs):8.1f}")


if __name__ == "__main__":
    main()
