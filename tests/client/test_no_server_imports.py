"""The client side imports nothing of the server (DESIGN.md: ``client/`` — importable without
the server's dependencies): checked in a fresh interpreter, through the ``idp`` entry point."""

from __future__ import annotations

import json
import subprocess
import sys

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
