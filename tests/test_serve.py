"""`idp serve`: gunicorn with a real config; refuses to start with a config that has problems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port

IDP = str(Path(sys.executable).parent / "idp")


def _config(tmp_path: Path, port: int, **extra: str) -> Path:
    path = tmp_path / "idp.yaml"
    path.write_text(f"""
issuer: http://127.0.0.1:{port}
secret_key: ${{IDP_SECRET_KEY}}
store: {{url: "memory://"}}
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
keys: {{dir: keys, generate: true}}
audit: {{sink: file, path: audit.log}}
""" + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def test_serve_refuses_config_with_problems_and_lists_them(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 1, session="{idle_timeout: 5}")
    r = subprocess.run([IDP, "serve", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items()
                                        if k != "IDP_SECRET_KEY"})
    assert r.returncode == 2
    assert "`IDP_SECRET_KEY` is not set" in r.stderr and "session.idle_timeout" in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_refuses_memory_store_with_several_workers(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 1)
    r = subprocess.run([IDP, "serve", "--config", str(cfg), "--workers", "2"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "IDP_SECRET_KEY": "k" * 48})
    assert r.returncode == 2 and "memory:// store lives in one process" in r.stderr


def test_serve_runs_gunicorn_with_the_config(tmp_path: Path) -> None:
    port = free_port()
    cfg = _config(tmp_path, port)
    env = {**os.environ, "IDP_SECRET_KEY": "k" * 48}
    proc = subprocess.Popen([IDP, "serve", "--config", str(cfg), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {
            "status": "ok"}
        r = requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert r.status_code == 200 and "csrf_token" in r.text
        assert (tmp_path / "keys" / "keys.json").exists()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert b"Booting worker" in out
