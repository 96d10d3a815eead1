"""``GET /saml/sso`` of a signed-in browser is answered by idp.web.saml_fast without Flask,
exactly as the Flask view answers it: the same page and headers, the same assertion, the
same audit records.  Every outcome it does not answer itself (the login page, a revoked
person, the password-change gate, a replay, a bad signature or query, a store that is down)
is handed to the view, and the answer is the one the view gives alone: the request's ID
claimed once, each refusal audited once.

Each case sends one request through the whole stack (``app``) and another, with a fresh
AuthnRequest where one is needed, straight to Flask (``Flask.wsgi_app``, the direct paths
peeled off), and compares the two."""

from __future__ import annotations

import base64
import functools
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask, request_started
from werkzeug.test import Client, TestResponse

from idp.login.csrf import CSRF_COOKIE, csrf_token
from idp.revocation import revoke_person
from idp.saml.build import instant
from idp.saml.metadata import AWS_ENTITY_ID
from idp.saml.xml import NS, encode_redirect
from idp.web.saml import POST_PARTS, post_page
from tests.fixtures.redis_server import RedisServer
from tests.helpers import login
from tests.saml.test_sso_session import PW, World
from tests.test_redis_round_trips import _authn_request

BINDING = "fast-path-binding"


class Pair:
    """One process (app) with its whole stack and the same app straight to Flask."""

    def __init__(self, world: World) -> None:
        client, self.comps, self.sink = world.process()
        self.world = world
        self.app: Flask = client.application
        self.full = Client(self.app, use_cookies=False)
        self.flask = Client(functools.partial(Flask.wsgi_app, self.app), use_cookies=False)
        self.flask_requests = 0

        def seen(sender: Any, **extra: Any) -> None:
            self.flask_requests += 1
        self._seen = seen  # a strong reference: signals keep weak ones
        request_started.connect(seen, self.app)

    def session(self) -> str:
        """A new signed-in session of zora (through the login form)."""
        client = self.app.test_client()
        assert login(client, "zora", PW).status_code == 303
        cookie = client.get_cookie(self.comps.config.session.cookie_name)
        assert cookie is not None
        return cookie.value

    def get(self, via: str, query: str, sid: str | None, binding: str | None = BINDING
            ) -> TestResponse:
        cookies = [f"{self.comps.config.session.cookie_name}={sid}"] if sid else []
        if binding:
            cookies.append(f"{CSRF_COOKIE}={binding}")
        headers = {"Cookie": "; ".join(cookies)} if cookies else {}
        client = self.full if via == "full" else self.flask
        return client.get(f"/saml/sso?{query}", headers=headers)

    def prime(self) -> None:
        """Render the page's parts, as the first SSO of a process does through Flask."""
        assert not self.app.extensions.get(POST_PARTS)
        with self.app.test_request_context():
            post_page("https://sp.example/acs", {"SAMLResponse": "x"})
        assert self.app.extensions[POST_PARTS]

    def events(self) -> list[str]:
        return [e["eventName"] for e in self.sink.records]


@pytest.fixture(params=["redis", "memory"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, demo_keys_dir: Path
         ) -> Iterator[Pair]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "memory://"
    world = World(tmp_path, demo_keys_dir, url)
    try:
        yield Pair(world)
    finally:
        for comps in world.apps:
            comps.close()


_VARYING = re.compile(
    r'((?:ID|InResponseTo|IssueInstant|NotBefore|NotOnOrAfter|AuthnInstant|SessionIndex|'
    r'URI)="|<ds:DigestValue>|<ds:SignatureValue>)[^"<]*')


def _normalised(r: TestResponse) -> tuple[int, dict[str, str], str, str]:
    """Status, headers (but the length), the page with the response taken out, and the
    response's XML with what differs per response (IDs, instants, digests, signatures)
    taken out."""
    page = r.get_data(as_text=True)
    m = re.search(r'name="SAMLResponse" value="([^"]+)"', page)
    xml = _VARYING.sub(r"\1~", base64.b64decode(m.group(1)).decode()) if m else ""
    headers = {k: v for k, v in r.headers.items() if k != "Content-Length"}
    return r.status_code, headers, re.sub(r'value="[^"]{200,}"', 'value="~"', page), xml


def test_a_signed_in_browser_is_answered_without_flask_as_flask_answers(pair: Pair) -> None:
    pair.prime()
    sid, before, mark = pair.session(), pair.flask_requests, len(pair.sink.records)
    fast = pair.get("full", _authn_request(pair.world.sp_key), sid)
    assert pair.flask_requests == before, "the direct path did not answer"
    fast_events, mark = pair.events()[mark:], len(pair.sink.records)
    slow = pair.get("flask", _authn_request(pair.world.sp_key), sid)
    assert pair.flask_requests == before + 1
    assert fast.status_code == 200 and "SAMLResponse" in fast.get_data(as_text=True)
    assert _normalised(fast) == _normalised(slow)
    assert fast_events == pair.events()[mark:] and fast_events


def test_the_csrf_token_for_our_own_consumer_is_the_views(pair: Pair) -> None:
    """An AuthnRequest of the built-in AWS SP is answered with a form to our own consumer,
    /federation/saml, carrying this browser's CSRF token: the same token either way (it is
    bound to the cookie, not to the request), and none with another consumer."""
    pair.prime()
    sid = pair.session()
    tokens = []
    for via in ("full", "flask"):
        xml = (f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" '
               f'ID="_{uuid.uuid4().hex}" Version="2.0" IssueInstant="{instant(time.time())}">'
               f'<saml:Issuer>{AWS_ENTITY_ID}</saml:Issuer></samlp:AuthnRequest>')
        r = pair.get(via, urlencode({"SAMLRequest": encode_redirect(xml.encode())}), sid)
        page = r.get_data(as_text=True)
        assert r.status_code == 200 and "/federation/saml" in page, page[:300]
        tokens.append(re.findall(r'name="csrf_token" value="([^"]*)"', page))
    assert tokens[0] == tokens[1] == [csrf_token(pair.comps.secret, BINDING)]
    other = pair.get("full", _authn_request(pair.world.sp_key), sid).get_data(as_text=True)
    assert "csrf_token" not in other


def _location_shape(r: TestResponse) -> tuple[int, str]:
    loc = r.headers.get("Location", "")
    return r.status_code, re.sub(r"((?:resume|SAMLRequest|Signature)(?:%3D|=))[^&]+", r"\1~", loc)


def test_no_session_cookie_or_no_csrf_cookie_goes_to_flask(pair: Pair) -> None:
    pair.prime()
    for sid, binding in ((None, BINDING), (pair.session(), None)):
        before = pair.flask_requests
        r = pair.get("full", _authn_request(pair.world.sp_key), sid, binding)
        assert pair.flask_requests == before + 1, (sid, binding)
        if binding is None:  # Flask sets the CSRF cookie the direct path could not
            assert CSRF_COOKIE in r.headers.get("Set-Cookie", "")


def test_an_unknown_session_is_sent_to_login_once_as_flask_sends_it(pair: Pair) -> None:
    pair.prime()
    answers = []
    for via in ("full", "flask"):
        mark = len(pair.sink.records)
        r = pair.get(via, _authn_request(pair.world.sp_key), "no-such-session-id")
        answers.append((_location_shape(r), pair.events()[mark:]))
        resume = re.search(r"resume%3D([^&%]+)", r.headers["Location"])
        assert resume, r.headers["Location"]
        # the parked request resumes once signed in: it was parked once, by one of the two
        client = pair.app.test_client()
        assert login(client, "zora", PW).status_code == 303
        done = client.get(f"/saml/sso?resume={resume.group(1)}")
        assert done.status_code == 200 and "SAMLResponse" in done.get_data(as_text=True)
    assert answers[0] == answers[1]
    assert answers[0][0][0] == 302 and answers[0][0][1].startswith("/login?next=")


def test_a_revoked_persons_session_ends_once_and_goes_to_login(pair: Pair) -> None:
    pair.prime()
    answers = []
    for via in ("full", "flask"):
        sid = pair.session()
        sess = pair.comps.sessions.get(sid)
        assert sess is not None
        revoke_person(pair.comps.store, (sess.subject, sess.username), int(time.time()) + 1)
        mark = len(pair.sink.records)
        r = pair.get(via, _authn_request(pair.world.sp_key), sid)
        events = pair.events()[mark:]
        answers.append((_location_shape(r), events))
        assert events.count("Logout") == 1, events
        assert pair.comps.sessions.get(sid) is None
    assert answers[0] == answers[1]


def test_must_change_goes_to_the_change_form_and_the_request_is_not_spent(pair: Pair) -> None:
    pair.world.must_change()
    pair = Pair(pair.world)  # a process that reads the users file now
    pair.prime()
    answers = []
    for via in ("full", "flask"):
        sid = pair.session()
        query = _authn_request(pair.world.sp_key)
        r = pair.get(via, query, sid)
        answers.append(_location_shape(r))
        form = "/account/password?" + urlencode({"next": f"/saml/sso?{query}"})
        assert r.headers.get("Location") == form, (via, r.status_code, r.headers)
        # the ID was taken back: the same request is not a replay (it meets the gate again)
        again = pair.get(via, query, sid)
        assert _location_shape(again) == _location_shape(r)
    assert answers[0] == answers[1]


def test_a_replayed_request_is_refused_as_flask_refuses_it(pair: Pair) -> None:
    pair.prime()
    sid = pair.session()
    answers = []
    for via in ("full", "flask"):
        query = _authn_request(pair.world.sp_key)
        assert pair.get(via, query, sid).status_code == 200
        mark = len(pair.sink.records)
        r = pair.get(via, query, sid)
        answers.append((r.status_code, r.get_data(as_text=True), pair.events()[mark:]))
    assert answers[0] == answers[1]
    assert answers[0][0] == 400 and len(answers[0][2]) == 1, answers[0]


@pytest.mark.parametrize("spoil", ["signature", "repeated-parameter", "not-deflated"])
def test_a_bad_request_is_refused_and_audited_once_as_flask_does(pair: Pair, spoil: str
                                                                   ) -> None:
    pair.prime()
    sid = pair.session()
    answers = []
    for via in ("full", "flask"):
        query = _authn_request(pair.world.sp_key)
        if spoil == "signature":
            query = re.sub(r"Signature=[^&]{6}", "Signature=AAAAAA", query)
        elif spoil == "repeated-parameter":
            query += "&RelayState=a&RelayState=b"
        else:
            query = re.sub(r"SAMLRequest=[^&]+", "SAMLRequest=bm90LWRlZmxhdGVk", query)
        mark = len(pair.sink.records)
        r = pair.get(via, query, sid)
        answers.append((r.status_code, r.get_data(as_text=True), pair.events()[mark:]))
    assert answers[0] == answers[1]
    status, _, events = answers[0]
    assert status == (403 if spoil == "signature" else 400) and len(events) == 1, answers[0]


def test_a_store_that_is_down_answers_503_as_flask_does(tmp_path: Path, demo_keys_dir: Path,
                                                       redis_stoppable: RedisServer) -> None:
    world = World(tmp_path, demo_keys_dir, redis_stoppable.url)
    try:
        pair = Pair(world)
        pair.prime()
        sid = pair.session()
        redis_stoppable.stop()
        answers = []
        for via in ("full", "flask"):
            r = pair.get(via, _authn_request(pair.world.sp_key), sid)
            answers.append((r.status_code, r.headers.get("Retry-After"),
                            r.get_data(as_text=True)))
        assert answers[0] == answers[1]
        assert answers[0][0] == 503 and answers[0][1]
    finally:
        for comps in world.apps:
            comps.close()
