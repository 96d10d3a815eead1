"""The client side imports nothing of the server (DESIGN.md: ``client/`` — importable without
the server's dependencies): checked in a fresh interpreter, through the ``idp`` entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERVER_PACKAGES = {"flask", "werkzeug", "lxml", "redis", "pydantic", "ldap3", "joserfc",
                   "authlib", "saml2", "xmlsec", "argon2", "yaml", "click", "gunicorn",
                   "granian", "prometheus_client", "cryptography"}
PROBE = """
import json, sys
sys.argv = ["idp", "credentials", "--profile", "nowhere"]
import idp.client.awsconfig, idp.client.execute, idp.client.session, idp.client.workload
import idp.entry
try:
    idp.entry.main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def test_idp_credentials_and_every_client_module_load_no_server_package(tmp_path: str) -> None:
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                       timeout=60, env={"IDP_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "no profile `nowhere`" in r.stderr
    modules = json.loads(r.stdout)
    assert not sorted({m.split(".")[0] for m in modules} & SERVER_PACKAGES)
    ours = [m for m in modules if m.startswith("idp.")]
    assert ours and all(m.startswith("idp.client") or m == "idp.entry" for m in ours), ours


def test_client_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    """What the client-only distribution (``client/pyproject.toml``) ships: ``idp/client``
    alone, run with no site-packages at all (``-S``)."""
    shutil.copytree(ROOT / "idp" / "client", tmp_path / "lib" / "idp" / "client")
    home = tmp_path / "home"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from idp.client.cli import main; "
            "sys.exit(main(sys.argv[2:]))")
    base = [sys.executable, "-S", "-I", "-c", code, str(tmp_path / "lib")]
    env = {"IDP_HOME": str(home), "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "PATH": "/usr/bin:/bin"}
    r = subprocess.run([*base, "configure", "--profile", "p", "--issuer",
                        "https://idp.example.org", "--role", "ReadOnly"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "credentials --profile p" in (tmp_path / "config").read_text()
    r = subprocess.run([*base, "credentials", "--profile", "p"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3 and r.stdout == "" and "run `idp login --profile p`" in r.stderr
    every = ("import sys; sys.path.insert(0, sys.argv[1]); import idp.client.awsconfig, "
             "idp.client.execute, idp.client.http, idp.client.oidc, idp.client.session, "
             "idp.client.sts, idp.client.tty, idp.client.workload")
    r = subprocess.run([sys.executable, "-S", "-I", "-c", every, str(tmp_path / "lib")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_server_command_without_the_server_packages_says_what_is_missing() -> None:
    code = ("import sys; sys.modules['click'] = None; sys.argv = ['idp', 'serve']; "
            "import idp.entry; idp.entry.main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "the server commands need the server's packages (click is missing)" in r.stderr


def test_client_distribution_ships_idp_client_alone() -> None:
    text = (ROOT / "client" / "pyproject.toml").read_text()
    assert 'packages = ["idp.client"]' in text and "dependencies = []" in text
    assert 'idp = "idp.client.cli:run"' in text
