"""The session of an AuthnRequest at ``/saml/sso`` is read in the round trip that claims the
request's ID (``SET NX`` then the reads, one Lua script on Redis), not in a ``before_request``
hook: the checks that hook made still hold on that path -- a revoked person's session signs
no one in, in a process that has read the session before (its revocation markers are read in
the claim's round trip) and in one that has not; a person who must change their password
goes to the change form first, and the same request is answered after it (its ID was taken
back, since it was not answered); a request answered once is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from flask.testing import FlaskClient

from idp.app import Components
from idp.audit import MemorySink
from idp.directory.file import FileDirectory, add_user, write_users
from idp.revocation import revoke_person
from tests.helpers import config, csrf, login, make_app
from tests.test_redis_round_trips import ACS, SP, _authn_request, _sp_metadata

PW = "amber-lantern-orbit"
NEW = "quiet-harbour-violet"


class World:
    """A users file with zora, a signing SP, and apps (processes) on one store."""

    def __init__(self, tmp_path: Path, keys: Path, store_url: str) -> None:
        self.users = tmp_path / "users.yaml"
        write_users(self.users, [])
        add_user(self.users, "zora", PW, ["engineering"], "zora@example.org", "Zora Foster")
        self.sp_key = _sp_metadata(tmp_path / "metadata")
        self.cfg = config(tmp_path, keys, store={"url": store_url},
                          directory={"type": "file", "file": {"path": str(self.users)}},
                          saml={"service_providers": {SP: {}}})
        self.apps: list[Components] = []

    def process(self) -> tuple[FlaskClient, Components, MemorySink]:
        app, comps, sink = make_app(self.cfg, directory=FileDirectory(self.users))
        self.apps.append(comps)
        return app.test_client(), comps, sink

    def must_change(self) -> None:
        data = yaml.safe_load(self.users.read_text())
        data["users"][0]["must_change"] = True
        self.users.write_text(yaml.safe_dump(data))

    def sso(self, client: FlaskClient, query: str | None = None) -> Any:
        return client.get(f"/saml/sso?{query or _authn_request(self.sp_key)}")


@pytest.fixture(params=["redis", "memory"])
def world(request: pytest.FixtureRequest, tmp_path: Path, demo_keys_dir: Path
          ) -> Iterator[World]:
    url = (request.getfixturevalue("redis_url") if request.param == "redis"
           else "memory://")
    w = World(tmp_path, demo_keys_dir, url)
    try:
        yield w
    finally:
        for comps in w.apps:
            comps.close()


def _answered(r: Any) -> bool:
    return r.status_code == 200 and f'action="{ACS}"' in r.get_data(as_text=True) \
        and "SAMLResponse" in r.get_data(as_text=True)


def test_revoked_persons_session_gets_no_response_in_a_process_that_knows_it(
        world: World) -> None:
    client, comps, sink = world.process()
    assert login(client, "zora", PW).status_code == 303
    assert _answered(world.sso(client))  # this process now knows the session's marker keys
    sess = comps.sessions.get(client.get_cookie(comps.config.session.cookie_name).value)
    assert sess is not None
    revoke_person(comps.store, (sess.subject, sess.username), int(time.time()))
    r = world.sso(client)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login"), r.status_code
    ended = [e for e in sink.records if e["eventName"] == "Logout"]
    assert ended and ended[-1]["additionalEventData"]["reason"] == "PersonRevoked"
    assert comps.sessions.get(sess.id) is None


def test_revoked_persons_session_gets_no_response_in_a_process_new_to_it(
        tmp_path: Path, demo_keys_dir: Path, redis_url: str) -> None:
    world = World(tmp_path, demo_keys_dir, redis_url)  # processes share only a Redis store
    try:
        _revoked_in_another_process(world)
    finally:
        for comps in world.apps:
            comps.close()


def _revoked_in_another_process(world: World) -> None:
    client, comps, _ = world.process()
    assert login(client, "zora", PW).status_code == 303
    sess = comps.sessions.get(client.get_cookie(comps.config.session.cookie_name).value)
    assert sess is not None
    revoke_person(comps.store, (sess.subject, sess.username), int(time.time()))
    other, _, sink = world.process()  # another process: it reads the markers after the claim
    other.set_cookie(comps.config.session.cookie_name, sess.id, domain="localhost")
    r = world.sso(other)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login"), r.status_code
    assert [e["additionalEventData"]["reason"] for e in sink.records
            if e["eventName"] == "Logout"] == ["PersonRevoked"]


def test_must_change_goes_to_the_change_form_and_the_same_request_is_answered_after(
        world: World) -> None:
    """The browser follows the redirects: the change form keeps the whole signed request as
    its ``next`` (encoded, so RelayState, SigAlg and Signature stay in it), and after the
    change it is sent back to that request, which is answered."""
    world.must_change()
    client, _, _ = world.process()
    assert login(client, "zora", PW).status_code == 303
    query = _authn_request(world.sp_key)
    r = world.sso(client, query)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    form = r.headers["Location"]
    assert form == "/account/password?" + urlencode({"next": f"/saml/sso?{query}"})
    token = csrf(client, form)
    done = client.post(form, data={
        "csrf_token": token, "current_password": PW, "new_password": NEW,
        "confirm_password": NEW})
    assert done.status_code == 303
    back = done.headers["Location"]
    assert back.startswith(f"/saml/sso?{query}"), back[:200]
    assert _answered(client.get(back)), "the request's ID was not taken back"
    again = world.sso(client, query)
    assert again.status_code == 400, "a request answered once was answered again"
