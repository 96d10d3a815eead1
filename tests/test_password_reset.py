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
