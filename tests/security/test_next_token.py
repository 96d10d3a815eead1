"""A change of the mapping or of a person's groups takes effect at the next token: the token
endpoint reads the person's groups from the directory whenever it issues a token (code, device,
refresh), so a role taken away is missing from every token minted afterwards and
``AssumeRoleWithWebIdentity`` for it is ``AccessDenied``; a refreshed token is computed the same
way; a person gone from the directory gets ``invalid_grant``; an unreachable directory gets
``temporarily_unavailable`` and the refresh token is kept."""

from __future__ import annotations

import itertools
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.config import Config, parse_config
from idp.demo import USERS_FILE
from idp.directory.file import FileDirectory, read_users, write_users
from idp.store.memory import MemoryStore
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.oidc import rp
from tests.security.roles import arn, claims_of
from tests.sts.live import sts_client

CLI = rp.cli_redirect()


class LastingStore(MemoryStore):
    """Keeps its keys when the IdP stops, as Redis does across a restart."""

    def close(self) -> None:
        return None

    def __bool__(self) -> bool:  # an empty store is still the store to use
        return True


@dataclass
class World:
    users: Path
    port: int
    keys: Path
    secret: str
    store: LastingStore

    def set_groups(self, username: str, groups: tuple[str, ...]) -> None:
        users = read_users(self.users)
        write_users(self.users, [replace(u, groups=groups) if u.username == username else u
                                 for u in users])

    def drop(self, username: str) -> None:
        write_users(self.users, [u for u in read_users(self.users) if u.username != username])

    def config(self, developer_groups: list[str]) -> Config:
        """The demo roles from a config file (default trust policies), Developer for
        ``developer_groups``."""
        issuer = f"http://127.0.0.1:{self.port}"
        mapping: list[dict[str, Any]] = [{"role": "ReadOnly", "everyone": True}]
        if developer_groups:
            mapping.append({"role": "Developer", "groups": developer_groups})
        return parse_config({
            "issuer": issuer, "secret_key": self.secret, "store": {"url": "memory://"},
            "directory": {"type": "file", "file": {"path": str(self.users)}},
            "keys": {"dir": str(self.keys), "generate": True}, "audit": {"sink": "none"},
            "metadata_dirs": [str(self.users.parent / "metadata")],
            "iam": {"accounts": [{"id": "111122223333"}],
                    "oidc_providers": [{"url": issuer, "client_ids": ["demo-cli"]}],
                    "roles": [{"name": "Developer"}, {"name": "ReadOnly"}],
                    "mapping": mapping}})

    def start(self, developer_groups: list[str]) -> Any:
        ticks = itertools.count(0, 10)  # the file directory re-reads its file at every look-up
        directory = FileDirectory(self.users, clock=lambda: float(next(ticks)))
        return live_idp(self.config(developer_groups), demo=True, port=self.port,
                        store=self.store, directory=directory)


@pytest.fixture
def world(demo_keys_dir: Path, tmp_path: Path) -> World:
    users = tmp_path / "users.yaml"
    shutil.copyfile(USERS_FILE, users)
    return World(users, free_port(), demo_keys_dir, secrets.token_urlsafe(32), LastingStore())


@pytest.fixture
def idp(world: World) -> Iterator[LiveIdp]:
    with world.start(["engineering"]) as live:
        yield live


def developer(idp: LiveIdp, id_token: str) -> str:
    """``AssumeRoleWithWebIdentity`` for Developer: the assumed-role ARN or the error code."""
    client = sts_client(idp.url)
    try:
        out = client.assume_role_with_web_identity(RoleArn=arn("Developer"),
                                                   RoleSessionName="bob",
                                                   WebIdentityToken=id_token)
    except client.exceptions.ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return str(out["AssumedRoleUser"]["Arn"])


def refresh(url: str, token: str) -> requests.Response:
    return requests.post(f"{url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": token, "client_id": "demo-cli"})


def test_group_removed_role_gone_from_the_next_token_without_signing_in_again(
        world: World, idp: LiveIdp) -> None:
    browser = requests.Session()
    _, before, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob", browser=browser)
    assert arn("Developer") in claims_of(before["id_token"])["roles"]
    assert developer(idp, before["id_token"]).endswith("assumed-role/Developer/bob")
    world.set_groups("bob", ())
    _, after, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob", browser=browser)
    assert claims_of(after["id_token"])["roles"] == [arn("ReadOnly")]
    assert claims_of(after["id_token"]).get("groups") == []
    assert developer(idp, after["id_token"]) == "AccessDenied"


def test_refreshed_token_carries_the_roles_of_the_directory_at_refresh_time(
        world: World, idp: LiveIdp) -> None:
    _, first, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob")
    world.set_groups("bob", ())
    r = refresh(idp.url, first["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert claims_of(body["id_token"])["roles"] == [arn("ReadOnly")]
    assert claims_of(body["access_token"])["roles"] == [arn("ReadOnly")]
    assert developer(idp, body["id_token"]) == "AccessDenied"
    world.set_groups("bob", ("engineering",))  # and given back at the next refresh
    again = refresh(idp.url, body["refresh_token"]).json()
    assert arn("Developer") in claims_of(again["id_token"])["roles"]


def test_mapping_change_applies_to_refresh_tokens_issued_before_it(world: World) -> None:
    """A new mapping (a restart with a new config, same store): the old refresh token gives
    tokens of the new mapping."""
    with world.start(["engineering"]) as old:
        _, first, _ = rp.code_flow(old.url, "demo-cli", CLI, user="bob")
        assert arn("Developer") in claims_of(first["id_token"])["roles"]
    with world.start([]) as new:
        r = refresh(new.url, first["refresh_token"])
        assert r.status_code == 200, r.text
        assert claims_of(r.json()["id_token"])["roles"] == [arn("ReadOnly")]
        assert developer(new, r.json()["id_token"]) == "AccessDenied"
        assert developer(new, first["id_token"]) == "AccessDenied"  # not a role any more


def test_person_removed_from_directory_cannot_refresh(world: World, idp: LiveIdp) -> None:
    _, first, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob")
    world.drop("bob")
    r = refresh(idp.url, first["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_directory_outage_keeps_the_refresh_token(world: World, idp: LiveIdp) -> None:
    _, first, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="bob")
    good = world.users.read_bytes()
    world.users.write_text("users: [oops\n")
    r = refresh(idp.url, first["refresh_token"])
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    assert r.headers["Retry-After"] == "5"
    world.users.write_bytes(good)
    r = refresh(idp.url, first["refresh_token"])
    assert r.status_code == 200, r.text
    assert arn("Developer") in claims_of(r.json()["id_token"])["roles"]
