"""``idp users revoke`` across real processes: two ``idp serve`` (gunicorn) on one Redis and
the CLI as a third process.  After carol is revoked, her temporary credentials are refused
by both servers (``InvalidClientTokenId``/``ExpiredToken``), her refresh tokens fail at both
(``invalid_grant``) and her IdP session is over at both; bob, signed in the same way, keeps
everything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from idp.demo import USERS_FILE
from tests.fixtures.servers import free_port, wait_for_port
from tests.oidc import rp
from tests.security.roles import arn
from tests.security.test_next_token import CLI, refresh
from tests.sts.live import sts_client

IDP = str(Path(sys.executable).parent / "idp")


@contextmanager
def _serve(config: Path, port: int) -> Iterator[str]:
    proc = subprocess.Popen([IDP, "serve", "--config", str(config), "--bind",
                             f"127.0.0.1:{port}", "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture
def config_file(tmp_path: Path, demo_keys_dir: Path, redis_url: str) -> tuple[Path, int]:
    users = tmp_path / "users.yaml"
    shutil.copyfile(USERS_FILE, users)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    cfg: dict[str, Any] = {
        "issuer": issuer, "secret_key": "s" * 48, "store": {"url": redis_url},
        "directory": {"type": "file", "file": {"path": str(users)}},
        "keys": {"dir": str(demo_keys_dir), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(tmp_path / "metadata")],
        "oidc": {"clients": [{"client_id": "demo-cli", "token_endpoint_auth_method": "none",
                              "redirect_uris": ["http://127.0.0.1/callback"], "native": True}]},
        "iam": {"accounts": [{"id": "111122223333"}],
                "oidc_providers": [{"url": issuer, "client_ids": ["demo-cli"]}],
                "roles": [{"name": "ReadOnly"}],
                "mapping": [{"role": "ReadOnly", "everyone": True}]},
    }
    path = tmp_path / "idp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, port


def _person(base: str) -> dict[str, Any]:
    """Sign in at ``base`` with a browser of its own and get tokens."""
    browser = requests.Session()
    _, tokens, _ = rp.code_flow(base, "demo-cli", CLI, user="carol", browser=browser)
    return {"browser": browser, "tokens": tokens}


def _credentials(base: str, id_token: str) -> dict[str, Any]:
    out = sts_client(base).assume_role_with_web_identity(
        RoleArn=arn("ReadOnly"), RoleSessionName="someone", WebIdentityToken=id_token)
    return dict(out["Credentials"])


def _caller(base: str, creds: dict[str, Any]) -> str:
    client = sts_client(base, creds)
    try:
        return str(client.get_caller_identity()["Arn"])
    except client.exceptions.ClientError as exc:
        return str(exc.response["Error"]["Code"])


def _signed_in(browser: requests.Session, base: str) -> bool:
    return browser.get(f"{base}/account", allow_redirects=False, timeout=10).status_code == 200


def test_revoke_carol_across_two_idp_serve_processes_on_one_redis(
        config_file: tuple[Path, int]) -> None:
    path, port_a = config_file
    with ExitStack() as stack:
        a = stack.enter_context(_serve(path, port_a))
        b = stack.enter_context(_serve(path, free_port()))
        # two sign-ins (at the issuer's address: the browser flow names it), two families
        carol_a, carol_b = _person(a), _person(a)
        bob = requests.Session()
        _, bob_tokens, _ = rp.code_flow(a, "demo-cli", CLI, user="bob", browser=bob)
        carol_creds = _credentials(a, carol_a["tokens"]["id_token"])
        bob_creds = _credentials(b, bob_tokens["id_token"])
        for base in (a, b):
            assert _caller(base, carol_creds).endswith("assumed-role/ReadOnly/someone")
            assert _signed_in(carol_a["browser"], base)

        out = subprocess.run([IDP, "users", "revoke", "carol", "--reason", "left the company",
                              "--config", str(path)], capture_output=True, text=True,
                             timeout=60, env=os.environ)
        assert out.returncode == 0, out.stderr

        for base in (a, b):
            assert _caller(base, carol_creds) in ("InvalidClientTokenId", "ExpiredToken")
            assert not _signed_in(carol_a["browser"], base)
            assert not _signed_in(carol_b["browser"], base)
        for base, person in ((a, carol_b), (b, carol_a)):  # each family at the other server
            r = refresh(base, person["tokens"]["refresh_token"])
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

        # bob is untouched, at both servers
        assert _caller(a, bob_creds).endswith("assumed-role/ReadOnly/someone")
        assert refresh(b, bob_tokens["refresh_token"]).status_code == 200
        assert _signed_in(bob, a) and _signed_in(bob, b)
