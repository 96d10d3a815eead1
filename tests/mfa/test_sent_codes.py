"""Codes by email (a local aiosmtpd server) and by text message (a webhook receiver that
checks the HMAC signature, and SNS Publish against a moto server): enrol, sign in, single
use, resend and send limits."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient

from idp.mfa.senders import SIGNATURE_HEADER, sign
from tests.fixtures.servers import free_port
from tests.mfa.web import csrf, form_value, login, mfa_app

HOOK_SECRET = "w" * 40


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def last_code(self) -> str:
        body = self.messages[-1].get_payload()
        m = re.search(r"code is (\d{6,8})\.", str(body))
        assert m, body
        return m.group(1)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Receiver:
    """A text-message gateway stand-in: refuses bodies whose signature does not match."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                want = "sha256=" + hmac.new(HOOK_SECRET.encode(), body,
                                            hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, self.headers.get(SIGNATURE_HEADER, "")):
                    outer.refused += 1
                    self.send_response(401)
                else:
                    outer.messages.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last_code(self) -> str:
        m = re.search(r"code is (\d{6,8})\.", self.messages[-1]["message"])
        assert m
        return m.group(1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def email_app(tmp_path: Path, keys: Path, port: int, **extra: Any) -> Any:
    return mfa_app(tmp_path, keys, factors=["totp", "recovery", "email"],
                   email={"host": "127.0.0.1", "port": port, "security": "none",
                          "sender": "idp@example.org"}, **extra)


def enrol_sent(c: FlaskClient, kind: str, last_code: Any, **form: str) -> list[str]:
    token = csrf(c, "/account/mfa")
    r = c.post("/account/mfa/sent", data={"csrf_token": token, "kind": kind, **form})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    page = r.get_data(as_text=True)
    r = c.post("/account/mfa/sent/confirm", data={
        "csrf_token": token, "pending": form_value(page, "pending"), "code": last_code()})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return re.findall(r"<code>([0-9a-z]{5}-[0-9a-z]{5})</code>", r.get_data(as_text=True))


def send(c: FlaskClient, method: str) -> Any:
    token = csrf(c, f"/login/mfa?method={method}")
    return c.post("/login/mfa/send", data={"csrf_token": token, "method": method,
                                           "next": "/account"})


def submit(c: FlaskClient, method: str, code: str) -> Any:
    token = csrf(c, f"/login/mfa?method={method}")
    return c.post("/login/mfa", data={"csrf_token": token, "method": method, "code": code,
                                      "next": "/account"})


def test_email_code_enrol_and_sign_in_once(tmp_path: Path, demo_keys_dir: Path,
                                           smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    app, comps, sink = email_app(tmp_path, demo_keys_dir, port)
    c = app.test_client()
    login(c, "alice", "alice-password")
    assert len(enrol_sent(c, "email", inbox.last_code)) == 10
    assert inbox.messages[-1]["To"] == "alice@example.org"
    login(c, "alice", "alice-password", reauth="1")
    r = send(c, "email")
    assert r.status_code == 303 and "sent=a" in r.headers["Location"]
    code = inbox.last_code()
    assert len(code) == 6
    assert submit(c, "email", code).status_code == 303
    assert "used in this session" in c.get("/account").get_data(as_text=True)
    login(c, "alice", "alice-password", reauth="1")
    assert submit(c, "email", code).status_code == 401  # single use
    assert code not in json.dumps(sink.records)
    comps.close()


def test_resend_interval_refuses_a_second_send_at_once(tmp_path: Path, demo_keys_dir: Path,
                                                        smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    app, comps, sink = email_app(tmp_path, demo_keys_dir, port, resend_interval=60)
    c = app.test_client()
    login(c, "alice", "alice-password")
    enrol_sent(c, "email", inbox.last_code)
    login(c, "alice", "alice-password", reauth="1")
    assert send(c, "email").status_code == 303
    r = send(c, "email")
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 60
    assert [e.get("errorCode") for e in sink.records
            if e["eventName"] == "MfaCodeSent"][-1] == "TooManyCodes"
    comps.close()


def test_send_limit_per_person(tmp_path: Path, demo_keys_dir: Path,
                               smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    app, comps, _ = email_app(tmp_path, demo_keys_dir, port, resend_interval=0,
                              sends_per_person=3)
    c = app.test_client()
    login(c, "alice", "alice-password")
    enrol_sent(c, "email", inbox.last_code)  # send 1
    login(c, "alice", "alice-password", reauth="1")
    assert send(c, "email").status_code == 303  # 2
    assert send(c, "email").status_code == 303  # 3
    assert send(c, "email").status_code == 429
    sent = len(inbox.messages)
    assert sent == 3
    comps.close()


def test_send_limit_per_ip(tmp_path: Path, demo_keys_dir: Path,
                           smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    app, comps, _ = email_app(tmp_path, demo_keys_dir, port, resend_interval=0,
                              sends_per_ip=2, sends_per_person=50)
    c = app.test_client()
    login(c, "alice", "alice-password")
    enrol_sent(c, "email", inbox.last_code)
    login(c, "alice", "alice-password", reauth="1")
    assert send(c, "email").status_code == 303
    assert send(c, "email").status_code == 429
    comps.close()


def test_wrong_email_codes_lock_the_factor(tmp_path: Path, demo_keys_dir: Path,
                                           smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    app, comps, sink = email_app(tmp_path, demo_keys_dir, port, factor_failures=2)
    c = app.test_client()
    login(c, "alice", "alice-password")
    enrol_sent(c, "email", inbox.last_code)
    login(c, "alice", "alice-password", reauth="1")
    send(c, "email")
    good = inbox.last_code()
    bad = f"{(int(good) + 1) % 10**6:06d}"
    assert submit(c, "email", bad).status_code == 401
    assert submit(c, "email", bad).status_code == 401
    assert submit(c, "email", good).status_code == 429
    assert [e["eventName"] for e in sink.records].count("MfaLockout") == 1
    comps.close()


def test_text_code_through_signed_webhook(tmp_path: Path, demo_keys_dir: Path,
                                          receiver: Receiver) -> None:
    app, comps, _ = mfa_app(tmp_path, demo_keys_dir, factors=["totp", "recovery", "sms"],
                            text={"sender": "webhook", "webhook": {
                                "url": receiver.url, "secret": HOOK_SECRET}})
    c = app.test_client()
    login(c, "bob", "bob-password")
    enrol_sent(c, "sms", receiver.last_code, phone="+33612345678")
    assert receiver.messages[-1]["to"] == "+33612345678" and receiver.refused == 0
    login(c, "bob", "bob-password", reauth="1")
    assert send(c, "sms").status_code == 303
    assert submit(c, "sms", receiver.last_code()).status_code == 303
    sid = c.get_cookie("idp_session").value  # type: ignore[union-attr]
    sess = comps.sessions.get(sid)
    assert sess is not None and sess.amr == ["pwd", "sms", "mfa"]
    comps.close()


def test_webhook_receiver_refuses_a_wrong_signature(receiver: Receiver) -> None:
    import urllib.error
    import urllib.request

    body = b'{"to":"+33612345678","message":"x","timestamp":0}'
    req = urllib.request.Request(receiver.url, data=body, method="POST", headers={
        SIGNATURE_HEADER: sign("x" * 40, body), "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=5)
    assert receiver.refused == 1


@pytest.mark.parametrize("phone", [
    pytest.param("0612345678", id="national-form"), pytest.param("+0612345678", id="plus-zero"),
    pytest.param("+33 6 12 34 56 78", id="spaces"), pytest.param("+3361234567890123", id="long"),
])
def test_phone_numbers_must_be_e164(tmp_path: Path, demo_keys_dir: Path, receiver: Receiver,
                                    phone: str) -> None:
    app, comps, _ = mfa_app(tmp_path, demo_keys_dir, factors=["totp", "recovery", "sms"],
                            text={"sender": "webhook", "webhook": {
                                "url": receiver.url, "secret": HOOK_SECRET}})
    c = app.test_client()
    login(c, "bob", "bob-password")
    token = csrf(c, "/account/mfa")
    r = c.post("/account/mfa/sent", data={"csrf_token": token, "kind": "sms", "phone": phone})
    assert r.status_code == 400 and not receiver.messages
    comps.close()


def test_text_code_through_sns_on_a_moto_server(tmp_path: Path, demo_keys_dir: Path) -> None:
    from moto.server import ThreadedMotoServer
    from moto.sns.models import sns_backends

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        app, comps, _ = mfa_app(tmp_path, demo_keys_dir, factors=["totp", "recovery", "sms"],
                                text={"sender": "sns", "sns": {
                                    "endpoint_url": f"http://127.0.0.1:{port}",
                                    "access_key_id": "AKIAMOTOEXAMPLE00000",
                                    "secret_access_key": "x" * 40}})
        backend = sns_backends["123456789012"]["us-east-1"]

        def last_code() -> str:
            _, text = list(backend.sms_messages.values())[-1]
            m = re.search(r"code is (\d{6,8})\.", text)
            assert m
            return m.group(1)

        c = app.test_client()
        login(c, "carol", "carol-password")
        enrol_sent(c, "sms", last_code, phone="+14155550100")
        assert list(backend.sms_messages.values())[-1][0] == "+14155550100"
        login(c, "carol", "carol-password", reauth="1")
        assert send(c, "sms").status_code == 303
        assert submit(c, "sms", last_code()).status_code == 303
        comps.close()
    finally:
        server.stop()


def test_sender_down_answers_503_not_a_traceback(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = email_app(tmp_path, demo_keys_dir, free_port())  # nobody listens
    c = app.test_client()
    login(c, "alice", "alice-password")
    token = csrf(c, "/account/mfa")
    r = c.post("/account/mfa/sent", data={"csrf_token": token, "kind": "email"})
    assert r.status_code == 503

    comps.close()
