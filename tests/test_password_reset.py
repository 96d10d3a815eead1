"""Forgotten password: the link is delivered to a real SMTP server the test starts
(aiosmtpd), works once within 15 minutes, and the answer is the same for unknown
addresses; requests are rate limited."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from idp.audit import MemorySink
from idp.demo import USERS_FILE
from idp.directory.file import FileDirectory
from tests.fixtures.servers import free_port
from tests.fixtures.slapd import SLAPD_CONF, Slapd, running_slapd
from tests.helpers import config, csrf, login, make_app


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def link(self) -> str:
        body = self.messages[-1].get_payload(decode=True).decode()
        m = re.search(r"http://\S+/account/reset\?token=(\S+)", body)
        assert m, body
        return f"/account/reset?token={m.group(1)}"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def env(tmp_path: Path, demo_keys_dir: Path,
        inbox: tuple[Inbox, int]) -> Iterator[tuple[Flask, MemorySink, Inbox]]:
    users = tmp_path / "users.yaml"
    shutil.copyfile(USERS_FILE, users)
    cfg = config(tmp_path, demo_keys_dir, directory={"type": "file", "file": {"path": str(users)}},
                 mail={"host": "127.0.0.1", "port": inbox[1], "sender": "idp@example.org"})
    ticks = iter(range(0, 10**9, 10))
    app, comps, sink = make_app(cfg, directory=FileDirectory(users,
                                                             clock=lambda: float(next(ticks))))
    yield app, sink, inbox[0]
    comps.close()


def _ask(client: FlaskClient, email: str) -> str:
    token = csrf(client, "/account/forgot")
    r = client.post("/account/forgot", data={"csrf_token": token, "email": email})
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _reset(client: FlaskClient, link: str, new: str) -> Any:
    token = csrf(client, link)
    return client.post("/account/reset", data={
        "csrf_token": token, "token": link.split("=", 1)[1], "new_password": new,
        "confirm_password": new})


def test_reset_link_delivered_by_smtp_used_once_then_refused(
        env: tuple[Flask, MemorySink, Inbox]) -> None:
    app, sink, box = env
    c = app.test_client()
    _ask(c, "bob@example.org")
    assert len(box.messages) == 1 and box.messages[0]["To"] == "bob@example.org"
    link = box.link()
    assert _reset(c, link, "password1").status_code == 400, "rules first, link not spent"
    r = _reset(c, link, "quiet-harbour-violet")
    assert r.status_code == 200 and "Your password was changed" in r.get_data(as_text=True)
    again = c.post("/account/reset", data={
        "csrf_token": csrf(c, "/account/forgot"), "token": link.split("=", 1)[1],
        "new_password": "another-harbour-violet", "confirm_password": "another-harbour-violet"})
    assert again.status_code == 400 and "expired or was already used" in again.get_data(
        as_text=True)
    assert login(app.test_client(), "bob", "bob-password").status_code == 401
    assert login(app.test_client(), "bob", "quiet-harbour-violet").status_code == 303
    assert "quiet-harbour-violet" not in repr(sink.records)


def test_reset_same_answer_for_an_unknown_address(env: tuple[Flask, MemorySink, Inbox]) -> None:
    app, _, box = env
    known = _ask(app.test_client(), "bob@example.org")
    unknown = _ask(app.test_client(), "nobody@example.org")

    def strip(page: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", page)
    assert strip(known) == strip(unknown)
    assert len(box.messages) == 1


def test_reset_link_expires_after_15_minutes(env: tuple[Flask, MemorySink, Inbox]) -> None:
    app, _, box = env
    c = app.test_client()
    _ask(c, "bob@example.org")
    assert box.link()
    comps = app.extensions["idp"]
    k = next(k for k in comps.store._data if "pwreset:" in k)  # type: ignore[attr-defined]
    assert 0 < comps.store.ttl(k) <= 900


def test_reset_requests_are_rate_limited(env: tuple[Flask, MemorySink, Inbox]) -> None:
    app, sink, box = env
    for _ in range(5):
        _ask(app.test_client(), "bob@example.org")
    assert len(box.messages) == 3
    assert sink.records[-1]["additionalEventData"]["outcome"] == "RateLimited"


def test_forgot_password_is_off_without_mail(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    assert app.test_client().get("/account/forgot").status_code == 404
    comps.close()


# -- LDAP, where the service account may write passwords -----------------------------------

_WRITER_ACL = """access to attrs=userPassword
    by dn.exact="{service}" write
    by anonymous auth
    by * none"""


@pytest.fixture
def writable_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd of its own whose service account may write ``userPassword`` (the reset
    changes passwords: the shared slapd fixtures stay untouched)."""
    old = "access to attrs=userPassword\n    by anonymous auth\n    by * none"
    assert old in SLAPD_CONF
    with running_slapd(tmp_path_factory.mktemp("slapd-writer"),
                       conf_template=SLAPD_CONF.replace(old, _WRITER_ACL)) as server:
        yield server


def _ldap_app(tmp_path: Path, keys: Path, slapd: Slapd, port: int,
              reset: bool) -> tuple[Flask, Any]:
    ldap = slapd.ldap_config(password_reset=reset).model_dump(mode="json", exclude_none=True)
    cfg = config(tmp_path, keys, directory={"type": "ldap", "ldap": ldap},
                 mail={"host": "127.0.0.1", "port": port, "sender": "idp@example.org"})
    app, comps, _ = make_app(cfg)
    return app, comps


def test_ldap_reset_by_the_service_account_with_password_modify_then_sign_in(
        writable_slapd: Slapd, tmp_path: Path, demo_keys_dir: Path,
        inbox: tuple[Inbox, int]) -> None:
    app, comps = _ldap_app(tmp_path, demo_keys_dir, writable_slapd, inbox[1], reset=True)
    try:
        c = app.test_client()
        _ask(c, "carol@example.org")
        assert len(inbox[0].messages) == 1 and inbox[0].messages[0]["To"] == "carol@example.org"
        link = inbox[0].link()
        r = _reset(c, link, "quiet-harbour-violet")
        assert r.status_code == 200 and "Your password was changed" in r.get_data(as_text=True)
        again = c.get(link)
        assert again.status_code == 400 and "expired or was already used" in again.get_data(
            as_text=True), "the link works once"
        assert login(app.test_client(), "carol", "carol-password").status_code == 401
        assert login(app.test_client(), "carol", "quiet-harbour-violet").status_code == 303
    finally:
        comps.close()


def test_ldap_reset_is_off_unless_the_config_allows_it(
        writable_slapd: Slapd, tmp_path: Path, demo_keys_dir: Path,
        inbox: tuple[Inbox, int]) -> None:
    app, comps = _ldap_app(tmp_path, demo_keys_dir, writable_slapd, inbox[1], reset=False)
    try:
        assert app.test_client().get("/account/forgot").status_code == 404
        assert comps.directory.can_reset is False
    finally:
        comps.close()


def test_ldap_reset_refused_by_the_server_is_shown_in_words(
        slapd: Slapd, tmp_path: Path, demo_keys_dir: Path, inbox: tuple[Inbox, int]) -> None:
    """The shared slapd lets its service account only read: the reset is refused by the
    server (insufficient access), nothing changes and the link still works."""
    app, comps = _ldap_app(tmp_path, demo_keys_dir, slapd, inbox[1], reset=True)
    try:
        c = app.test_client()
        _ask(c, "dave@example.org")
        link = inbox[0].link()
        r = _reset(c, link, "quiet-harbour-violet")
        assert r.status_code == 400
        assert "directory refused the new password" in r.get_data(as_text=True).lower()
        assert login(app.test_client(), "dave", "quiet-harbour-violet").status_code == 401
        assert c.get(link).status_code == 200, "a refused reset does not spend the link"
    finally:
        comps.close()
