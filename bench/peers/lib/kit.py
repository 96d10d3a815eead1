"""The pieces every side of the side-by-side kit shares: where things are, servers started on
the servers' core and stopped by their process id, wrk (the one load generator) on the other
core, request files, medians, `openssl speed` and the versions measured.

Locations come from the environment (run.sh sets them, with these defaults):

- ``IDP_CHECKOUT``: the project checkout to measure (default: the one holding this kit)
- ``PEERS_WORK``: everything generated or downloaded (default: ``bench/peers/.work``)
- ``PEERS_SERVER_CPU`` / ``PEERS_LOAD_CPU``: the servers' core and wrk's core (default 0 and 1)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KIT = Path(__file__).resolve().parent.parent
CHECKOUT = Path(os.environ.get("IDP_CHECKOUT") or KIT.parent.parent).resolve()
WORK = Path(os.environ.get("PEERS_WORK") or KIT / ".work").resolve()
IDP = CHECKOUT / ".venv" / "bin" / "idp"
USERS = CHECKOUT / "idp" / "demo" / "users.yaml"
SERVER_CPU = os.environ.get("PEERS_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("PEERS_LOAD_CPU", "1")
LUA = KIT / "lib" / "check.lua"


def work(*parts: str) -> Path:
    """A folder of the work folder, made when missing."""
    folder = WORK.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def output(cmd: list[str]) -> str:
    """A command's first line of output, or "" when it cannot run (for the versions)."""
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except OSError:
        return ""
    if run.returncode != 0:
        return ""
    lines = run.stdout.strip().splitlines()
    return lines[0].strip() if lines else ""


def debian_version(package: str) -> str:
    return output(["dpkg-query", "-W", "-f=${Version}", package])


def versions() -> dict[str, Any]:
    """What was measured: the project's commit (and whether its tree was clean), the tools."""
    git = ["git", "-C", str(CHECKOUT)]
    commit = output([*git, "log", "-1", "--format=%h %cI %s"])[:100]
    dirty = output([*git, "status", "--porcelain", "--untracked-files=no"])
    return {
        "checkout": str(CHECKOUT),
        "commit": commit or "unknown",
        "tree": ("modified" if dirty else "clean") if commit else "unknown",
        "python": output([str(CHECKOUT / ".venv" / "bin" / "python"), "--version"]),
        "wrk": debian_version("wrk"),
        "openssl": output(["openssl", "version"]),
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "server_cpu": SERVER_CPU,
        "load_cpu": LOAD_CPU,
    }


class Server:
    """A server process started with ``taskset -c SERVER_CPU`` in its own session (children
    and threads inherit the core); stopped by its process id with SIGTERM."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *cmd], env={**os.environ, **(env or {})},
                stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, url: str, seconds: float = 60) -> None:
        """Wait until ``url`` answers 200; stop with the server's log when it died."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"{self.name} exited ({self.proc.returncode}):\n{tail}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer {url} within {seconds:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Request:
    """One line of a request file (see lib/check.lua)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def write_requests(path: Path, requests: list[Request]) -> Path:
    with open(path, "w") as f:
        for r in requests:
            headers = "|".join(f"{k}: {v}" for k, v in r.headers.items())
            line = "\t".join((r.method, r.path, headers, r.body))
            if "\n" in line or line.count("\t") != 3 or "|" in "".join(r.headers.values()):
                raise ValueError(f"request does not fit the file format: {line[:120]}")
            f.write(line + "\n")
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
        spent[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += spent.get(p, 0.0)
        todo += [c for c, pp in parent.items() if pp == p]
    return total


def wrk(port: int, requests: Path, expect: str, seconds: float, connections: int,
        server_pid: int) -> dict[str, Any]:
    """One wrk run (``-t1 -cN``, on LOAD_CPU) of the request file; every response checked."""
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
           "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}"]
    before = cpu_seconds(server_pid)
    run = subprocess.run(cmd, env={**os.environ, "REQ_FILE": str(requests), "EXPECT": expect},
                         capture_output=True, text=True, timeout=seconds + 120)
    spent = cpu_seconds(server_pid) - before
    m = re.search(r"^RESULT (.*)$", run.stdout, re.M)
    if not m:
        raise SystemExit(f"wrk gave no result:\n{run.stdout}\n{run.stderr}")
    res: dict[str, Any] = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    res["server_cpu_s"] = round(spent, 2)
    if run.stderr.strip():
        res["stderr"] = run.stderr.strip()[:1000]
    return res


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median rate of the rounds and the totals a reader needs to trust it."""
    return {
        "rate": statistics.median(r["rate"] for r in runs),
        "rates": [round(r["rate"]) for r in runs],
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "good": int(sum(r["good"] for r in runs)),
        "bad": int(sum(r["bad"] for r in runs)),
        "sockerr": int(sum(r["sockerr"] for r in runs)),
        "wrapped": int(sum(r["wrapped"] for r in runs)),
        "server_cpu_s": round(sum(r["server_cpu_s"] for r in runs), 1),
        "per_cpu": sum(r["requests"] for r in runs) / max(
            sum(r["server_cpu_s"] + r.get("redis_cpu_s", 0.0) for r in runs), 0.01),
        "stderr": next((r["stderr"] for r in runs if "stderr" in r), ""),
    }


def openssl_rsa2048(seconds: int = 2) -> float:
    """RSA-2048 signs/s of ``openssl speed -seconds N rsa2048`` on the servers' core."""
    run = subprocess.run(["taskset", "-c", SERVER_CPU, "openssl", "speed", "-seconds",
                          str(seconds), "rsa2048"], capture_output=True, text=True, timeout=120)
    m = re.search(r"^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s", run.stdout, re.M)
    if not m:
        raise SystemExit(f"openssl speed gave no rsa2048 line:\n{run.stdout}{run.stderr}")
    return float(m.group(1))


def need_project() -> None:
    """Stop with a clear message when the project checkout has no built virtualenv."""
    if not IDP.exists() or not USERS.exists():
        sys.exit(f"no {IDP} (or no {USERS}): build the project's virtualenv first, e.g.\n"
                 f"  (cd {CHECKOUT} && ./dev demo --help)\n"
                 "or set IDP_CHECKOUT to a checkout that has one")
