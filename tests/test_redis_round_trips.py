"""Redis round trips and commands per operation on the hot paths, on a real ``redis-server``.

Each operation runs through the whole WSGI app (the machine-to-machine POSTs once through the
fast paths, once through the Flask routes alone) on a Redis store whose connections count what
they send: a round trip is one write of packed commands to the server (a pipeline or a Lua
script is one), a command is what ``INFO commandstats`` counts on the server.  The upper
bounds pin today's figures (bench/RESULTS.md, "Redis round trips per operation"): an extra
round trip on a hot path fails here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.test import Client, TestResponse

from idp.saml.build import instant
from idp.saml.messages import sign_redirect
from idp.saml.xml import NS, encode_redirect
from idp.store import open_store
from idp.store.redis import RedisStore
from tests.helpers import config, make_app
from tests.saml.spapps import _b64_body, make_cert
from tests.sts.webapp import FORM, ISSUER, flask_only, session_from, sts_call

SP = "https://sp.trips.example/metadata"
ACS = "https://sp.trips.example/acs"
WEB = ("demo-web", "demo-web-secret")
WEB_URI = "http://127.0.0.1:8400/callback"
SERVICE = ("demo-service", "demo-service-secret")
PRIOR_SESSIONS = 3

# (round trips, commands) at most, per operation; commands as the server counts them: an EVAL
# and each command its script runs.
BOUNDS: dict[str, tuple[int, int]] = {
    "login": (4, 5),
    "SAML SSO with session, first to this SP": (2, 4),
    "SAML SSO with session": (1, 3),
    "AssumeRoleWithSAML": (2, 4),
    "GetCallerIdentity": (2, 2),
    "client_credentials": (0, 0),
    "authorization_code + PKCE": (3, 7),
    "refresh_token": (3, 7),
    "introspection (JWT)": (1, 1),
}


@dataclass
class Cost:
    """What one operation cost the store: round trips, commands (the server's count) and
    the commands sent (name and key kind, for the failure message)."""

    trips: int
    commands: int
    sent: list[str]


Measure = Callable[[Callable[[], Any]], Cost]


class Counter:
    """Round trips sent by the store's connections, and the commands (name and key kind)."""

    def __init__(self) -> None:
        self.trips = 0
        self.sent: list[str] = []

    def command(self, args: tuple[Any, ...]) -> None:
        words = [a.decode() if isinstance(a, bytes) else str(a) for a in args[:4]]
        name = words[0].upper()
        first = words[3] if name in {"EVAL", "EVALSHA"} else words[1] if len(words) > 1 else ""
        self.sent.append(f"{name} {':'.join(first.split(':')[:2])}")


def _counting_store(url: str, counter: Counter) -> RedisStore:
    store = open_store(url)
    assert isinstance(store, RedisStore)
    client = store._get_client()
    assert isinstance(client, redis.Redis)
    base = client.connection_pool.connection_class

    class Counting(base):  # type: ignore[valid-type,misc]
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counter.trips += 1
            super().send_packed_command(command, check_health)

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            counter.command(args)
            super().send_command(*args, **kwargs)

        def pack_commands(self, commands: Any) -> list[bytes]:  # a pipeline
            for args in commands:
                counter.command(args)
            out: list[bytes] = super().pack_commands(commands)
            return out

    client.connection_pool.disconnect()
    client.connection_pool.connection_class = Counting
    return store


def _sp_metadata(folder: Path) -> rsa.RSAPrivateKey:
    """A signing SP (tests.saml.spapps's key and certificate), its metadata in ``folder``."""
    key_pem, cert_pem = make_cert("trips-sp")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sp.xml").write_text(f"""<md:EntityDescriptor
 xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
 entityID="{SP}"><md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
 <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
 {_b64_body(cert_pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
 <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
 Location="{ACS}" index="0"/></md:SPSSODescriptor>
</md:EntityDescriptor>""")
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _authn_request(key: rsa.RSAPrivateKey) -> str:
    xml = (f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" '
           f'ID="_{uuid.uuid4().hex}" Version="2.0" IssueInstant="{instant(time.time())}" '
           f'Destination="{ISSUER}/saml/sso" AssertionConsumerServiceURL="{ACS}">'
           f'<saml:Issuer>{SP}</saml:Issuer></samlp:AuthnRequest>')
    return sign_redirect([("SAMLRequest", encode_redirect(xml.encode())),
                          ("RelayState", "trips")], key)


def _hidden(name: str, text: str) -> str:
    m = re.search(f'name="{name}" value="([^"]+)"', text)
    assert m, f"no {name} in {text[:300]}"
    return m.group(1)


class Flows:
    """The operations, each a function; the state one leaves is what the next one uses."""

    def __init__(self, client: Client, machine: Client, sp_key: rsa.RSAPrivateKey) -> None:
        self.c = client  # the browser's requests: the app as served
        self.m = machine  # the machine-to-machine POSTs: as served, or the Flask routes alone
        self.sp_key = sp_key
        self.saml_response = ""
        self.creds: Any = None
        self.tokens: dict[str, Any] = {}
        self.code = ""
        self.verifier = ""

    def _get(self, path: str, **kw: Any) -> TestResponse:
        return self.c.get(path, base_url=ISSUER, **kw)

    def login_page(self) -> str:
        return _hidden("csrf_token", self._get("/login?next=/account").get_data(as_text=True))

    def login(self, csrf: str) -> None:
        r = self.c.post("/login", base_url=ISSUER, data={
            "username": "alice", "password": "alice-password", "next": "/account",
            "csrf_token": csrf})
        assert r.status_code in (302, 303), r.get_data(as_text=True)[:300]

    def saml_sso(self, query: str) -> None:
        r = self._get(f"/saml/sso?{query}")
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        assert "SAMLResponse" in r.get_data(as_text=True)

    def aws_response(self) -> None:
        r = self._get("/saml/idp-initiated?sp=urn:amazon:webservices")
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        self.saml_response = _hidden("SAMLResponse", r.get_data(as_text=True))

    def assume_saml(self) -> None:
        self.creds = session_from(sts_call(self.m, {
            "Action": "AssumeRoleWithSAML",
            "RoleArn": "arn:aws:iam::111122223333:role/Developer",
            "PrincipalArn": "arn:aws:iam::111122223333:saml-provider/demo-idp",
            "SAMLAssertion": self.saml_response}))

    def caller(self) -> None:
        r = sts_call(self.m, {"Action": "GetCallerIdentity"}, self.creds)
        assert r.status_code == 200 and "assumed-role/Developer" in r.get_data(as_text=True)

    def authorize(self) -> None:
        self.verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        r = self._get("/oauth2/authorize", query_string={
            "client_id": WEB[0], "response_type": "code", "redirect_uri": WEB_URI,
            "scope": "openid email offline_access", "state": "s", "nonce": "n",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        if r.status_code == 200 and 'name="resume"' in r.get_data(as_text=True):
            text = r.get_data(as_text=True)
            r = self.c.post("/oauth2/authorize", base_url=ISSUER, data={
                "csrf_token": _hidden("csrf_token", text), "resume": _hidden("resume", text),
                "decision": "allow"})
        refresh = re.search(r'content="0;url=([^"]+)"', r.get_data(as_text=True))
        location = r.headers.get("Location") or (html.unescape(refresh[1]) if refresh else "")
        self.code = parse_qs(urlsplit(location).query)["code"][0]

    def _token(self, auth: tuple[str, str], **form: str) -> dict[str, Any]:
        r = self.m.post("/oauth2/token", base_url=ISSUER, data=form, auth=auth,
                        content_type=FORM)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        out: dict[str, Any] = r.get_json()
        return out

    def code_grant(self) -> None:
        self.tokens = self._token(WEB, grant_type="authorization_code", code=self.code,
                                  redirect_uri=WEB_URI, code_verifier=self.verifier)

    def refresh(self) -> None:
        self.tokens = self._token(WEB, grant_type="refresh_token",
                                  refresh_token=self.tokens["refresh_token"])

    def client_credentials(self) -> None:
        assert self._token(SERVICE, grant_type="client_credentials")["access_token"]

    def introspect(self) -> None:
        r = self.m.post("/oauth2/introspect", base_url=ISSUER, auth=WEB, content_type=FORM,
                        data={"token": self.tokens["access_token"]})
        assert r.status_code == 200 and r.get_json()["active"] is True, r.get_data()


@pytest.fixture(params=["fast path", "flask route"])
def flows(request: pytest.FixtureRequest, tmp_path: Path, demo_keys_dir: Path, redis_url: str
          ) -> Iterator[tuple[Flows, Measure]]:
    """The demo app on a counting Redis store, and ``measure(fn)``: what ``fn`` cost it.  The
    POSTs to /sts and /oauth2 go to the app as served (the fast paths) or to the Flask routes
    alone: both cost the same."""
    counter = Counter()
    store = _counting_store(redis_url, counter)
    sp_key = _sp_metadata(tmp_path / "metadata")
    cfg = config(tmp_path, demo_keys_dir, store={"url": redis_url},
                 saml={"service_providers": {SP: {"aws_attributes": True}}})
    app, comps, _ = make_app(cfg, demo=True, store=store)
    server = redis.Redis.from_url(redis_url)

    def commands() -> int:
        stats = server.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")

    def measure(fn: Callable[[], Any]) -> Cost:
        trips, cmds, sent = counter.trips, commands(), len(counter.sent)
        fn()
        return Cost(counter.trips - trips, commands() - cmds, counter.sent[sent:])

    try:
        served = Client(app)
        machine = served if request.param == "fast path" else Client(flask_only(app))
        yield Flows(served, machine, sp_key), measure
    finally:
        server.close()
        comps.close()


def test_redis_round_trips_per_operation_stay_within_their_bounds(
        flows: tuple[Flows, Measure], capsys: pytest.CaptureFixture[str]) -> None:
    f, measure = flows
    for _ in range(PRIOR_SESSIONS):  # alice has signed in elsewhere: her list names these
        f.login(f.login_page())
        f.c.delete_cookie("idp_session", domain="127.0.0.1")
    csrf = f.login_page()
    sso = [_authn_request(f.sp_key) for _ in range(2)]
    got = {
        "login": measure(lambda: f.login(csrf)),
        "SAML SSO with session, first to this SP": measure(lambda: f.saml_sso(sso[0])),
        "SAML SSO with session": measure(lambda: f.saml_sso(sso[1])),
    }
    f.aws_response()
    f.assume_saml()  # this process's first use of the epoch renews it (once a day)
    f.aws_response()
    got["AssumeRoleWithSAML"] = measure(f.assume_saml)
    got["GetCallerIdentity"] = measure(f.caller)
    f.authorize()
    got["authorization_code + PKCE"] = measure(f.code_grant)
    got["refresh_token"] = measure(f.refresh)
    got["client_credentials"] = measure(f.client_credentials)
    got["introspection (JWT)"] = measure(f.introspect)
    with capsys.disabled():
        print("\n| operation | round trips | commands |\n| --- | ---: | ---: |")
        for name, cost in got.items():
            print(f"| {name} | {cost.trips} | {cost.commands} | {' '.join(cost.sent)}")
    over = {name: (got[name], bound) for name, bound in BOUNDS.items()
            if got[name].trips > bound[0] or got[name].commands > bound[1]}
    assert not over, f"more Redis work than pinned (got, bound): {over}"
