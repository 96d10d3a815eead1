"""Store outages at /sts, /iam and /sts/decide, on a real ``redis-server``: killed, stopped
(SIGSTOP: every read hangs until the client's socket timeout) and at ``maxmemory`` with
``noeviction`` (writes refused).  Each is AWS's ``503 ServiceUnavailable`` with
``Retry-After`` (the decision endpoint: its JSON shape), through the fast path and the Flask
route alike, in bounded time; never ``500 InternalFailure``."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from botocore.credentials import Credentials
from werkzeug.test import Client, TestResponse

from tests.fixtures.redis_server import RedisServer
from tests.sts.test_web import _decide, _probe
from tests.sts.webapp import USER, WebApp, aws_code, session_from, sts_call, web_app

SOCKET_TIMEOUT = 0.5
BOUND = 5.0  # seconds a request may take while the store hangs (a few store calls at most)


def _kill(server: RedisServer) -> Callable[[], None]:
    server.stop()
    return lambda: None


def _sigstop(server: RedisServer) -> Callable[[], None]:
    assert server.proc is not None
    pid = server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


def _out_of_memory(server: RedisServer) -> Callable[[], None]:
    """Filled, then ``maxmemory`` set below what is used, ``noeviction``: writes refused."""
    client = server.client()
    client.config_set("maxmemory-policy", "noeviction")
    for i in range(64):
        client.set(f"filler:{i}", b"x" * 16384)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used // 2))
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        client.set("one-more", b"x")
    client.close()
    return lambda: None


OUTAGES = [
    pytest.param(_kill, True, id="redis killed"),
    pytest.param(_sigstop, True, id="redis stopped (SIGSTOP)"),
    pytest.param(_out_of_memory, False, id="redis at maxmemory with noeviction"),
]


@pytest.fixture
def web_on(redis_stoppable: RedisServer, tmp_path: Path, demo_keys_dir: Path
           ) -> Iterator[WebApp]:
    w = web_app(tmp_path, demo_keys_dir, store={"url": redis_stoppable.url,
                                                "socket_timeout": SOCKET_TIMEOUT})
    yield w
    w.close()


def _timed(call: Callable[[], TestResponse]) -> TestResponse:
    start = time.monotonic()
    r = call()
    elapsed = time.monotonic() - start
    assert elapsed < BOUND, f"answered after {elapsed:.1f} s"
    return r


def _assert_unavailable_xml(r: TestResponse) -> None:
    assert r.status_code == 503, r.get_data(as_text=True)
    assert aws_code(r) == "ServiceUnavailable"
    assert "<Type>Receiver</Type>" in r.get_data(as_text=True)
    assert r.headers["Retry-After"] == "5"
    assert r.headers["Content-Type"].startswith("text/xml")


@pytest.mark.parametrize(("outage", "reads_fail"), OUTAGES)
def test_store_outage_is_503_service_unavailable(
        web_on: WebApp, redis_stoppable: RedisServer,
        outage: Callable[[RedisServer], Callable[[], None]], reads_fail: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    web = web_on
    # a session issued while the store is up (GetSessionToken writes it)
    session = session_from(sts_call(web.fast, {"Action": "GetSessionToken",
                                               "DurationSeconds": "900"}, USER))
    resume = outage(redis_stoppable)
    try:
        answers = []
        for _, client in web.both():
            # a write: the new session cannot be stored
            r = _timed(lambda c=client: sts_call(c, {"Action": "GetSessionToken"}, USER))
            _assert_unavailable_xml(r)
            answers.append((r.status_code, r.get_data(as_text=True).split("<RequestId>")[0],
                            r.headers["Retry-After"]))
        assert answers[0] == answers[1]  # the two paths agree
        reads: list[tuple[str, Callable[[Client], TestResponse]]] = [
            ("/sts GetCallerIdentity", lambda c: sts_call(
                c, {"Action": "GetCallerIdentity"}, session)),
            ("/iam GetRole", lambda c: sts_call(
                c, {"Action": "GetRole", "RoleName": "ReadOnly"}, session, path="/iam",
                service="iam")),
        ]
        for name, call in reads:
            for _, client in web.both():
                r = _timed(lambda c=client, f=call: f(c))
                if reads_fail:
                    _assert_unavailable_xml(r)
                else:  # reads still work at maxmemory
                    assert r.status_code in (200, 403), (name, r.get_data(as_text=True))
        decided = _timed(lambda: _decide(web.flask, json.dumps(_probe(session)).encode()))
        if reads_fail:
            assert decided.status_code == 503, decided.get_data(as_text=True)
            assert decided.headers["Retry-After"] == "5"
            assert decided.json is not None
            assert decided.json["decision"] == "Deny"
            assert decided.json["error"]["code"] == "ServiceUnavailable"
        else:
            assert decided.status_code == 200 and decided.json is not None
            assert decided.json["principal"] == "arn:aws:iam::111122223333:user/ops"
    finally:
        resume()
    assert "InternalFailure" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]  # an outage is no bug: no traceback


def test_a_bug_is_500_internal_failure_with_a_log_line(
        web_on: WebApp, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Only a real bug is ``InternalFailure`` (500), and it is logged with its traceback."""
    svc = web_on.comps.extras["sts"]

    def broken(*_: object, **__: object) -> Credentials:
        raise KeyError("a bug")
    monkeypatch.setattr(svc.credentials, "find", broken)
    for _, client in web_on.both():
        r = sts_call(client, {"Action": "GetCallerIdentity"}, USER)
        assert (r.status_code, aws_code(r)) == (500, "InternalFailure")
        assert "a bug" not in r.get_data(as_text=True)
        assert "Retry-After" not in r.headers
    logged = [r for r in caplog.records if r.name == "idp.sts" and r.exc_info]
    assert len(logged) == 2
