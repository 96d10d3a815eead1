"""Several `idp serve` instances on one host (one user, one home directory) run side by side:
nothing of one gunicorn lands where another's would (its control socket is off)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port

IDP = str(Path(sys.executable).parent / "idp")


def _start(workdir: Path, home: Path) -> tuple[subprocess.Popen[bytes], int]:
    workdir.mkdir()
    port = free_port()
    cfg = workdir / "idp.yaml"
    cfg.write_text(f"""
issuer: http://127.0.0.1:{port}
secret_key: ${{IDP_SECRET_KEY}}
store: {{url: "memory://"}}
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
keys: {{dir: {workdir / "keys"}, generate: true}}
audit: {{sink: none}}
""")
    env = {**os.environ, "IDP_SECRET_KEY": "k" * 48, "HOME": str(home)}
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--server", "gunicorn"], env=env, cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, port


def test_two_gunicorn_instances_on_one_host_share_no_control_socket(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    procs = [_start(tmp_path / name, home) for name in ("a", "b")]
    outputs: list[str] = []
    try:
        for _, port in procs:
            wait_for_port(port, 30)
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert not list(home.rglob("*.ctl")), "no control socket under the shared home"
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            outputs.append(proc.communicate(timeout=30)[0].decode(errors="replace"))
    for out in outputs:
        assert "Booting worker" in out and "Traceback" not in out
