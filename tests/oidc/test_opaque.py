"""Opaque (reference) access tokens, per client (``access_token_format: opaque``): the protocol
core with a pinned clock and the memory store.  Each opaque case runs beside a JWT twin (the
same client but for the format), so "as for a JWT" is checked, not assumed."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.audit import Auditor, MemorySink
from idp.config import OidcClientConfig, OidcConfig, parse_config
from idp.errors import ConfigError
from idp.iam import demo_model
from idp.keys import KeyRing, init_keys
from idp.oidc import Grantee, OAuthRequest
from idp.oidc.authorize import Redirect, authorize
from idp.oidc.clients import demo_clients
from idp.oidc.core import Core
from idp.oidc.endpoints import introspect, revoke, userinfo
from idp.oidc.grants import s256, token_endpoint
from idp.oidc.state import OPAQUE_PREFIX
from idp.revocation import revoke_person
from idp.store import Write, key
from idp.store.memory import MemoryStore
from tests.helpers import SECRET

ISSUER = "http://127.0.0.1:9"
T0 = 1_800_000_000.0
ACCESS_TTL = 600
ALICE = Grantee("alice", "sub-alice", ["admins"], {"email": "a@example.org"}, int(T0),
                ["pwd"], "sid-1")
VERIFIER = "v" * 43
REDIRECT = "http://127.0.0.1:7/callback"
FORMATS = [pytest.param("jwt", id="jwt"), pytest.param("opaque", id="opaque")]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryStore):
    """The memory store, counting the reads and writes that reach it."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.gets = 0
        self.sets = 0
        self.steal_next_swap = False  # a concurrent request spends the value first

    def swap(self, key: str, expected: bytes, writes: Sequence[Write]) -> bool:
        if self.steal_next_swap:
            self.steal_next_swap = False
            self.delete(key)
        return super().swap(key, expected, writes)

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return super().get(key)

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self.sets += 1
        super().set(key, value, ttl)


def _clients() -> list[OidcClientConfig]:
    """The demo clients, and per format a service and a native app of that format."""
    out = demo_clients()
    for fmt in ("jwt", "opaque"):
        out += [
            OidcClientConfig(client_id=f"{fmt}-service", client_secret=f"{fmt}-secret",
                             grant_types=["client_credentials"], scopes=["roles"],
                             require_consent=False, access_token_format=fmt),  # type: ignore[arg-type]
            OidcClientConfig(client_id=f"{fmt}-app", token_endpoint_auth_method="none",
                             native=True, redirect_uris=["http://127.0.0.1/callback"],
                             access_token_format=fmt),  # type: ignore[arg-type]
        ]
    return out


def _secret(client: str) -> str:
    return f"{client}-secret" if client.startswith("demo-") else client.split("-")[0] + "-secret"


def basic(client: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()


class Env:
    def __init__(self, keys_dir: Path) -> None:
        self.clock = Clock()
        self.store = CountingStore(self.clock)
        self.sink = MemorySink()
        self.core = Core.build(ISSUER, OidcConfig(clients=_clients(),
                                                  access_token_ttl=ACCESS_TTL),
                               keys=KeyRing.load(keys_dir), store=self.store,
                               auditor=Auditor(self.sink), roles=demo_model(ISSUER),
                               secret=b"s" * 32, clock=self.clock)

    def client_credentials(self, client: str) -> dict[str, Any]:
        return token_endpoint(self.core, OAuthRequest(
            {"grant_type": "client_credentials"}, basic(client, _secret(client)))).body

    def code(self, client: str) -> dict[str, str]:
        """The token request of a fresh code for alice at ``client`` (PKCE S256)."""
        self.core.state.remember_consent(client, ALICE.subject,
                                         {"openid", "email", "offline_access"}, 600)
        got = authorize(self.core, OAuthRequest({
            "response_type": "code", "client_id": client, "redirect_uri": REDIRECT,
            "scope": "openid email offline_access", "code_challenge": s256(VERIFIER),
            "code_challenge_method": "S256"}), ALICE)
        assert isinstance(got, Redirect)
        code = parse_qs(urlsplit(got.url).query)["code"][0]
        return {"grant_type": "authorization_code", "code": code, "client_id": client,
                "redirect_uri": REDIRECT, "code_verifier": VERIFIER}

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        return token_endpoint(self.core, OAuthRequest(form)).body

    def refresh(self, client: str, refresh_token: str) -> dict[str, Any]:
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token,
                           "client_id": client})

    def introspect(self, token: str, client: str = "demo-service") -> dict[str, Any]:
        return introspect(self.core, OAuthRequest(
            {"token": token}, basic(client, _secret(client)))).body

    def revoke(self, token: str, client: str) -> tuple[int, dict[str, Any]]:
        if client.endswith("-app"):  # public: names itself
            r = revoke(self.core, OAuthRequest({"token": token, "client_id": client}))
        else:
            r = revoke(self.core, OAuthRequest({"token": token}, basic(client, _secret(client))))
        return r.status, r.body


@pytest.fixture
def env(demo_keys_dir: Path) -> Env:
    init_keys(demo_keys_dir)
    return Env(demo_keys_dir)


# -- issuing ------------------------------------------------------------------------------

def test_default_access_token_format_stays_jwt(env: Env) -> None:
    assert OidcClientConfig(client_id="x", client_secret="s").access_token_format == "jwt"
    body = env.client_credentials("demo-service")  # no access_token_format
    assert body["access_token"].count(".") == 2
    assert env.core.signer.verify(body["access_token"], typ="at+jwt", audience=ISSUER)
    assert not [k for k in env.store._data if k.startswith("idp:at:")]


def test_opaque_token_is_256_random_bits_stored_under_its_hash_for_its_lifetime(
        env: Env) -> None:
    sets = env.store.sets
    token = env.client_credentials("opaque-service")["access_token"]
    assert env.store.sets - sets == 1, "issuing an opaque token is one store write"
    assert token.startswith(OPAQUE_PREFIX) and "." not in token
    assert len(token) - len(OPAQUE_PREFIX) >= 43  # 32 bytes of URL-safe base64
    k = key("at", hashlib.sha256(token.encode()).hexdigest())
    assert env.store.ttl(k) == ACCESS_TTL
    assert all(token not in s and token[len(OPAQUE_PREFIX):] not in s
               for s in [*env.store._data, *(v.decode() for v, _ in env.store._data.values())])
    assert token != env.client_credentials("opaque-service")["access_token"]


# -- introspection (RFC 7662 §2.2) --------------------------------------------------------

def test_opaque_token_introspects_active_with_the_claims_a_jwt_would_carry(env: Env) -> None:
    opaque = env.introspect(env.client_credentials("opaque-service")["access_token"])
    jwt = env.introspect(env.client_credentials("jwt-service")["access_token"])
    assert opaque["active"] is True and opaque["token_type"] == "Bearer"
    assert opaque.keys() == jwt.keys()
    assert opaque["client_id"] == opaque["sub"] == "opaque-service"
    assert opaque["scope"] == "roles" and opaque["roles"] == jwt["roles"]
    assert (opaque["iss"], opaque["aud"]) == (ISSUER, ISSUER)
    assert (opaque["iat"], opaque["exp"]) == (int(T0), int(T0) + ACCESS_TTL)


def test_opaque_user_token_carries_the_person_family_and_session(env: Env) -> None:
    body = env.token(env.code("opaque-app"))
    got = env.introspect(body["access_token"])
    assert got["active"] is True and got["sub"] == ALICE.subject
    record = env.core.state.get_opaque(body["access_token"])
    assert record is not None and record["sid"] == "sid-1" and record["fid"]
    assert record["fid"] == body["refresh_token"].split(".")[0]


@pytest.mark.parametrize("client, reads", [
    pytest.param("opaque-service", 1, id="client-token-one-read"),
    pytest.param("opaque-app", 2, id="user-token-record-and-family"),
])
def test_opaque_introspection_is_one_store_read_plus_the_family_check(
        env: Env, client: str, reads: int) -> None:
    token = (env.client_credentials(client) if client.endswith("service")
             else env.token(env.code(client)))["access_token"]
    before = env.store.gets
    assert env.introspect(token)["active"] is True
    assert env.store.gets - before == reads


def test_expired_opaque_token_is_inactive(env: Env) -> None:
    token = env.client_credentials("opaque-service")["access_token"]
    env.clock.now += ACCESS_TTL - 1
    assert env.introspect(token)["active"] is True
    env.clock.now += 1
    assert env.introspect(token) == {"active": False}


def test_expired_opaque_token_is_inactive_even_before_the_store_drops_it(env: Env) -> None:
    """``exp`` is checked, not only the record's TTL (a store whose clock lags)."""
    token = env.client_credentials("opaque-service")["access_token"]
    env.store._clock = lambda: T0  # the store's clock stands still
    env.clock.now += ACCESS_TTL
    assert env.core.state.get_opaque(token) is not None
    assert env.introspect(token) == {"active": False}


@pytest.mark.parametrize("token", [
    pytest.param(OPAQUE_PREFIX + "A" * 43, id="unknown-opaque-token"),
    pytest.param(OPAQUE_PREFIX, id="prefix-only"),
    pytest.param(OPAQUE_PREFIX + "A" * 300, id="overlong-opaque-token"),
])
def test_unknown_opaque_token_is_inactive(env: Env, token: str) -> None:
    assert env.introspect(token) == {"active": False}


@pytest.mark.parametrize("fmt", FORMATS)
def test_any_confidential_client_may_introspect_an_access_token_as_for_jwt(
        env: Env, fmt: str) -> None:
    """§4 leaves it to the server: access tokens are answered to every resource server
    (confidential clients), of either format; public clients are refused."""
    token = env.client_credentials(f"{fmt}-service")["access_token"]
    other = env.introspect(token, "demo-web")
    assert other["active"] is True and other["client_id"] == f"{fmt}-service"
    public = introspect(env.core, OAuthRequest({"token": token, "client_id": "demo-cli"}))
    assert (public.status, public.body["error"]) == (401, "invalid_client")


# -- userinfo (OIDC Core §5.3) ------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_userinfo_accepts_the_access_token_of_either_format(env: Env, fmt: str) -> None:
    token = env.token(env.code(f"{fmt}-app"))["access_token"]
    got = userinfo(env.core, OAuthRequest({}, authorization=f"Bearer {token}"))
    assert got.status == 200
    assert got.body == {"sub": ALICE.subject, "email": "a@example.org", "email_verified": True}


def test_userinfo_refuses_a_revoked_opaque_token(env: Env) -> None:
    token = env.token(env.code("opaque-app"))["access_token"]
    assert env.revoke(token, "opaque-app") == (200, {})
    got = userinfo(env.core, OAuthRequest({}, authorization=f"Bearer {token}"))
    assert (got.status, got.body["error"]) == (401, "invalid_token")


# -- revocation: wherever a JWT dies, an opaque token dies -------------------------------

def test_revoking_an_opaque_token_deletes_its_record_at_once(env: Env) -> None:
    token = env.client_credentials("opaque-service")["access_token"]
    assert env.revoke(token, "opaque-service") == (200, {})
    assert env.core.state.get_opaque(token) is None
    assert env.introspect(token) == {"active": False}
    assert env.revoke(token, "opaque-service") == (200, {}), "RFC 7009 §2.2: still 200"


def test_another_client_cannot_revoke_an_opaque_token(env: Env) -> None:
    token = env.client_credentials("opaque-service")["access_token"]
    status, body = env.revoke(token, "jwt-service")
    assert (status, body["error"]) == (400, "unauthorized_client")
    assert env.introspect(token)["active"] is True


def _revoke_refresh(env: Env, client: str, body: dict[str, Any]) -> None:
    assert env.revoke(body["refresh_token"], client) == (200, {})


def _reuse_refresh(env: Env, client: str, body: dict[str, Any]) -> None:
    env.clock.now += 10
    assert "access_token" in env.refresh(client, body["refresh_token"])
    assert env.refresh(client, body["refresh_token"])["error"] == "invalid_grant"


def _revoke_application(env: Env, client: str, body: dict[str, Any]) -> None:
    """The person withdraws the client's access on /account: the next refresh is refused
    and revokes the family (an access token is not looked up until then, either format)."""
    env.clock.now += 10
    env.core.state.revoke_grants(client, ALICE.subject, int(env.clock()), 86400)
    assert env.refresh(client, body["refresh_token"])["error"] == "invalid_grant"


def _revoke_person(env: Env, client: str, body: dict[str, Any]) -> None:
    """``idp users revoke alice``: the next refresh is refused and revokes the family."""
    env.clock.now += 10
    revoke_person(env.store, (ALICE.subject, ALICE.username), int(env.clock()))
    assert env.refresh(client, body["refresh_token"])["error"] == "invalid_grant"


MECHANISMS = [
    pytest.param(_revoke_refresh, id="its-refresh-token-revoked"),
    pytest.param(_reuse_refresh, id="rotated-out-refresh-token-reused"),
    pytest.param(_revoke_application, id="application-revoked-on-account-page"),
    pytest.param(_revoke_person, id="idp-users-revoke"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_access_token_dies_with_its_family(env: Env, fmt: str, mechanism: Any) -> None:
    client = f"{fmt}-app"
    body = env.token(env.code(client))
    assert env.introspect(body["access_token"])["active"] is True
    mechanism(env, client, body)
    assert env.introspect(body["access_token"]) == {"active": False}
    got = userinfo(env.core, OAuthRequest({}, authorization=f"Bearer {body['access_token']}"))
    assert got.status == 401


@pytest.mark.parametrize("fmt", FORMATS)
def test_code_reuse_kills_the_access_token_the_code_bought(env: Env, fmt: str) -> None:
    form = env.code(f"{fmt}-app")
    body = env.token(form)
    assert env.token(form)["error"] == "invalid_grant"
    assert env.introspect(body["access_token"]) == {"active": False}


def test_a_refused_redemption_leaves_no_opaque_record(env: Env) -> None:
    """The record is written before the grant is committed: if the commit finds the refresh
    token already spent (a concurrent redemption), the record goes too."""
    body = env.token(env.code("opaque-app"))
    before = {k for k in env.store._data if k.startswith("idp:at:")}
    env.store.steal_next_swap = True
    assert env.refresh("opaque-app", body["refresh_token"])["error"] == "invalid_grant"
    assert {k for k in env.store._data if k.startswith("idp:at:")} == before


# -- audit --------------------------------------------------------------------------------

def test_audit_trail_never_holds_an_opaque_token(env: Env) -> None:
    token = env.client_credentials("opaque-service")["access_token"]
    env.introspect(token)
    env.revoke(token, "opaque-service")
    text = repr(env.sink.records)
    assert token not in text and token[len(OPAQUE_PREFIX):] not in text
    issued = [r for r in env.sink.records if r["eventName"] == "OidcToken"]
    assert issued[-1]["additionalEventData"]["accessFormat"] == "opaque"
    names = [r["eventName"] for r in env.sink.records]
    assert "OidcIntrospect" in names and "OidcRevoke" in names


# -- configuration ------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    pytest.param("reference", id="unknown-format"),
    pytest.param("JWT", id="case-matters"),
    pytest.param("", id="empty"),
    pytest.param(None, id="null"),
])
def test_config_refuses_an_unknown_access_token_format(tmp_path: Path, value: Any) -> None:
    data = {"issuer": "http://127.0.0.1:8000", "secret_key": SECRET,
            "store": {"url": "memory://"}, "directory": {"type": "file"},
            "oidc": {"clients": [{"client_id": "svc", "client_secret": "x",
                                  "access_token_format": value}]}}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert any(p.startswith("oidc.clients[0].access_token_format:") and "'opaque'" in p
               for p in err.value.problems), err.value.problems


def test_config_accepts_the_two_formats(tmp_path: Path) -> None:
    data = {"issuer": "http://127.0.0.1:8000", "secret_key": SECRET,
            "directory": {"type": "file", "file": {"path": str(tmp_path / "u.yaml")}},
            "oidc": {"clients": [
                {"client_id": "a", "client_secret": "x", "access_token_format": "opaque"},
                {"client_id": "b", "client_secret": "x", "access_token_format": "jwt"}]}}
    got = parse_config(data).oidc.clients
    assert [c.access_token_format for c in got] == ["opaque", "jwt"]
