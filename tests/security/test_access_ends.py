"""Access that ends when it should: a person disabled in the directory loses refresh and
their IdP session at the next directory check; ``idp users revoke`` ends a person's IdP
sessions, refresh families, consents and temporary credentials in every process on one
Redis store at once."""

from __future__ import annotations

import itertools
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from idp.config import Config
from idp.demo import USERS_FILE
from idp.directory.cli import users as users_cli
from idp.directory.file import FileDirectory, read_users, write_users
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.oidc import rp
from tests.security.roles import arn
from tests.security.test_next_token import CLI, LastingStore, World, refresh
from tests.sts.live import sts_client


def _disable(world: World, username: str) -> None:
    write_users(world.users, [replace(u, disabled=True) if u.username == username else u
                              for u in read_users(world.users)])


def _with(config: Config, **session: int) -> Config:
    return config.model_copy(update={"session": config.session.model_copy(update=session)})


@pytest.fixture
def world(demo_keys_dir: Path, tmp_path: Path) -> World:
    users = tmp_path / "users.yaml"
    shutil.copyfile(USERS_FILE, users)
    return World(users, free_port(), demo_keys_dir, secrets.token_urlsafe(32), LastingStore())


def _start(world: World, config: Config, port: int | None = None, **backends: object) -> Any:
    ticks = itertools.count(0, 10)
    directory = FileDirectory(world.users, clock=lambda: float(next(ticks)))
    return live_idp(config, demo=True, port=port or world.port, directory=directory,
                    **backends)


def _signed_in(browser: requests.Session, url: str) -> bool:
    r = browser.get(f"{url}/account", allow_redirects=False, timeout=10)
    return r.status_code == 200


def test_disabled_person_refresh_fails_with_invalid_grant(world: World) -> None:
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        _, first, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob")
        _disable(world, "bob")
        r = refresh(idp.url, first["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_disabled_person_session_ends_at_the_next_directory_check(world: World) -> None:
    with _start(world, _with(world.config(["engineering"]), directory_recheck=0),
                store=world.store) as idp:
        browser = requests.Session()
        rp.code_flow(idp.url, "demo-cli", CLI, user="bob", browser=browser)
        assert _signed_in(browser, idp.url)
        _disable(world, "bob")
        assert not _signed_in(browser, idp.url)
        r = browser.get(f"{idp.url}/oauth2/authorize", allow_redirects=False, timeout=10,
                        params={"client_id": "demo-cli", "response_type": "code",
                                "redirect_uri": CLI, "scope": "openid",
                                "code_challenge": "x" * 43, "code_challenge_method": "S256"})
        assert r.status_code in (302, 303) and "/login" in r.headers["Location"]


def test_disabled_person_session_lasts_until_the_recheck_interval(world: World) -> None:
    """Within ``session.directory_recheck`` (default 5 minutes) the session is not re-read:
    the bound on how long a disabled person keeps browsing."""
    with _start(world, world.config(["engineering"]), store=world.store) as idp:
        assert idp.config.session.directory_recheck == 300
        browser = requests.Session()
        rp.code_flow(idp.url, "demo-cli", CLI, user="bob", browser=browser)
        _disable(world, "bob")
        assert _signed_in(browser, idp.url)


def test_revoke_carol_across_two_processes_on_one_redis(world: World, redis_url: str,
                                                        tmp_path: Path) -> None:
    base = world.config(["engineering"])
    config = base.model_copy(update={"store": base.store.model_copy(update={"url": redis_url})})
    config_file = tmp_path / "idp.yaml"
    config_file.write_text(yaml.safe_dump({
        "issuer": config.issuer, "secret_key": world.secret, "store": {"url": redis_url},
        "directory": {"type": "file", "file": {"path": str(world.users)}},
        "audit": {"sink": "none"}}))
    with _start(world, config) as a, _start(world, config, port=free_port()) as b:
        browser = requests.Session()
        _, tokens, _ = rp.code_flow(a.url, "demo-cli", CLI, user="carol", browser=browser)
        sts = sts_client(a.url)
        creds = sts.assume_role_with_web_identity(
            RoleArn=arn("ReadOnly"), RoleSessionName="carol",
            WebIdentityToken=tokens["id_token"])["Credentials"]
        signed = sts_client(b.url, creds)
        assert signed.get_caller_identity()["Arn"].endswith("assumed-role/ReadOnly/carol")
        assert _signed_in(browser, b.url)

        out = CliRunner().invoke(users_cli, ["revoke", "carol", "--reason", "left the company",
                                             "--config", str(config_file)])
        assert out.exit_code == 0, out.output

        r = refresh(b.url, tokens["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        with pytest.raises(signed.exceptions.ClientError) as info:
            signed.get_caller_identity()
        assert info.value.response["Error"]["Code"] in ("InvalidClientTokenId", "ExpiredToken")
        assert not _signed_in(browser, a.url) and not _signed_in(browser, b.url)
        # carol may sign in again (disable her to keep her out) from the next second on (what
        # was issued in the second of the revocation is refused too)
        time.sleep(1.1)
        _, again, _ = rp.code_flow(a.url, "demo-cli", CLI, user="carol")
        assert refresh(b.url, again["refresh_token"]).status_code == 200


def test_revoke_refuses_a_memory_store(world: World, tmp_path: Path) -> None:
    config_file = tmp_path / "idp.yaml"
    config_file.write_text(yaml.safe_dump({
        "issuer": "http://127.0.0.1:9", "secret_key": world.secret,
        "directory": {"type": "file", "file": {"path": str(world.users)}}}))
    out = CliRunner().invoke(users_cli, ["revoke", "carol", "--config", str(config_file)])
    assert out.exit_code == 1 and "memory://" in out.output


def test_revoke_unknown_person(world: World, redis_url: str, tmp_path: Path) -> None:
    config_file = tmp_path / "idp.yaml"
    config_file.write_text(yaml.safe_dump({
        "issuer": "http://127.0.0.1:9", "secret_key": world.secret, "store": {"url": redis_url},
        "directory": {"type": "file", "file": {"path": str(world.users)}}}))
    out = CliRunner().invoke(users_cli, ["revoke", "nobody", "--config", str(config_file)])
    assert out.exit_code == 1 and "no user `nobody`" in out.output


def _signed_iam(url: str, creds: dict[str, Any], params: dict[str, str]) -> requests.Response:
    from urllib.parse import urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = urlencode({"Version": "2010-05-08", **params})
    req = AWSRequest(method="POST", url=f"{url}/iam", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"],
                          creds["SessionToken"]), "iam", "us-east-1").add_auth(req)
    return requests.post(f"{url}/iam", data=body, headers=dict(req.headers), timeout=10)


def _role_creds(url: str, user: str, role: str) -> dict[str, Any]:
    _, tokens, _ = rp.code_flow(url, "demo-cli", CLI, user=user)
    out = sts_client(url).assume_role_with_web_identity(
        RoleArn=arn(role), RoleSessionName=user, WebIdentityToken=tokens["id_token"])
    return dict(out["Credentials"])


def test_revoke_user_admin_api_authorized_by_the_policy_engine(demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    _, carol, _ = rp.code_flow(url, "demo-cli", CLI, user="carol")
    readonly = _signed_iam(url, _role_creds(url, "bob", "ReadOnly"),
                           {"Action": "RevokeUser", "UserName": "carol"})
    assert readonly.status_code == 403 and "<Code>AccessDenied</Code>" in readonly.text
    assert refresh(url, carol["refresh_token"]).status_code == 200, "nothing revoked"
    admin = _role_creds(url, "alice", "Admin")
    unknown = _signed_iam(url, admin, {"Action": "RevokeUser", "UserName": "nobody"})
    assert unknown.status_code == 404 and "NoSuchEntity" in unknown.text
    r = _signed_iam(url, admin, {"Action": "RevokeUser", "UserName": "carol",
                                 "Reason": "left the company"})
    assert r.status_code == 200 and "<RevokeUserResponse" in r.text, r.text
    assert refresh(url, carol["refresh_token"]).json()["error"] == "invalid_grant"
    audited = [e for e in demo_idp.audit.records if e["eventName"] == "RevokeUser"]
    assert audited[-1]["additionalEventData"]["reason"] == "left the company"
