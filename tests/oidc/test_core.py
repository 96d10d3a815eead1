"""The protocol core without HTTP: pinned clock, memory store, real keys."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec

from idp.audit import Auditor, MemorySink
from idp.config import OidcClientConfig, OidcConfig, parse_config
from idp.demo import demo_config
from idp.errors import ConfigError
from idp.iam import demo_model
from idp.keys import KeyRing, init_keys, rotate_keys
from idp.oidc import Grantee, OAuthError, OAuthRequest, build_provider
from idp.oidc.authorize import Redirect
from idp.oidc.client_auth import ASSERTION_TYPE
from idp.oidc.core import Core
from idp.oidc.grants import s256
from idp.oidc.jose import AT_TYP, TokenSigner
from idp.oidc.tokens import Grant, issue
from idp.store.memory import MemoryStore

ISSUER = "http://127.0.0.1:9"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


ALICE = Grantee("alice", "sub-alice", ["admins"], {"email": "a@example.org"}, int(T0),
                ["pwd"], "sid-1")


def make_core(keys_dir: Path, clients: list[OidcClientConfig], clock: Clock,
              **cfg: Any) -> Core:
    return Core.build(ISSUER, OidcConfig(clients=clients, **cfg), keys=KeyRing.load(keys_dir),
                      store=MemoryStore(clock=clock), auditor=Auditor(MemorySink()),
                      roles=demo_model(ISSUER), secret=b"s" * 32, clock=clock)


@pytest.fixture
def keys_dir(demo_keys_dir: Path) -> Path:
    init_keys(demo_keys_dir)
    return demo_keys_dir


def token_request(**params: str) -> OAuthRequest:
    return OAuthRequest(params)


# -- key rotation -------------------------------------------------------------------------

def test_tokens_of_the_previous_key_verify_while_it_is_published(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_keys(keys)
    clock = Clock()
    old = TokenSigner(KeyRing.load(keys), ISSUER, clock)
    token = old.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 60, "jti": "1"},
                     typ=AT_TYP)
    old_kid = jwt.get_unverified_header(token)["kid"]
    rotate_keys(keys)
    ring = KeyRing.load(keys)
    assert ring.get(old_kid) is not None and ring.get(old_kid).state == "retired"  # type: ignore[union-attr]
    after = TokenSigner(ring, ISSUER, clock)
    assert after.verify(token, typ=AT_TYP, audience=ISSUER)["jti"] == "1"
    new = after.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 60}, typ=AT_TYP)
    assert jwt.get_unverified_header(new)["kid"] != old_kid
    assert old_kid in {k["kid"] for k in ring.jwks()["keys"]}
    rotate_keys(keys)  # the retired key is removed: its tokens stop verifying
    with pytest.raises(OAuthError, match="unknown signing key"):
        TokenSigner(KeyRing.load(keys), ISSUER, clock).verify(token, typ=AT_TYP,
                                                              audience=ISSUER)


def test_verified_token_cache_forgets_expired_tokens(keys_dir: Path) -> None:
    """The cache of verified tokens keeps a token while it is valid, not until 8192 others
    push it out: a worker's memory follows one token lifetime of traffic (it grew for the
    whole of a 5-minute load run before)."""
    clock = Clock()
    signer = TokenSigner(KeyRing.load(keys_dir), ISSUER, clock)
    for jti in range(50):
        token = signer.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 60,
                             "jti": str(jti)}, typ=AT_TYP)
        signer.verify(token, typ=AT_TYP, audience=ISSUER)
    assert len(signer._verified) == 50
    clock.now += 61
    fresh = signer.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(clock()) + 60}, typ=AT_TYP)
    signer.verify(fresh, typ=AT_TYP, audience=ISSUER)
    assert list(signer._verified) == [fresh]


# -- codes and device codes expire (pinned clock) ------------------------------------------

def test_code_expires_after_code_ttl(keys_dir: Path) -> None:
    clock = Clock()
    from idp.oidc.clients import demo_clients

    core = make_core(keys_dir, demo_clients(), clock)
    verifier = "v" * 43
    req = OAuthRequest({"response_type": "code", "client_id": "demo-cli",
                        "redirect_uri": "http://127.0.0.1:7/callback", "scope": "openid",
                        "code_challenge": s256(verifier), "code_challenge_method": "S256"})
    core.state.remember_consent("demo-cli", ALICE.subject, {"openid"}, 600)
    from idp.oidc.authorize import authorize

    result = authorize(core, req, ALICE)
    assert isinstance(result, Redirect)
    code = result.url.split("code=")[1].split("&")[0]
    clock.now += 61
    from idp.oidc.grants import token_endpoint

    out = token_endpoint(core, token_request(
        grant_type="authorization_code", code=code, client_id="demo-cli",
        redirect_uri="http://127.0.0.1:7/callback", code_verifier=verifier))
    assert out.body["error"] == "invalid_grant"


def test_device_code_expires(keys_dir: Path) -> None:
    clock = Clock()
    from idp.oidc.clients import demo_clients
    from idp.oidc.device import device_authorization
    from idp.oidc.grants import token_endpoint

    core = make_core(keys_dir, demo_clients(), clock)
    start = device_authorization(core, token_request(client_id="demo-cli")).body
    clock.now += core.config.device_code_ttl + 1
    out = token_endpoint(core, token_request(
        grant_type="urn:ietf:params:oauth:grant-type:device_code",
        device_code=start["device_code"], client_id="demo-cli"))
    assert out.body["error"] == "expired_token"


# -- client secrets from config ------------------------------------------------------------

SECRET = "s3cret-value-for-tests"


@pytest.mark.parametrize("stored", [
    pytest.param(SECRET, id="plain"),
    pytest.param("sha256:" + hashlib.sha256(SECRET.encode()).hexdigest(), id="sha256-hash"),
    pytest.param(PasswordHasher(time_cost=1, memory_cost=1024).hash(SECRET), id="argon2-hash"),
    pytest.param("${APP_SECRET}", id="env-reference"),
])
def test_client_secret_forms(keys_dir: Path, stored: str) -> None:
    cfg = parse_config({**json.loads(demo_config(9).model_dump_json()), "oidc": {"clients": [{
        "client_id": "app", "client_secret": stored, "grant_types": ["client_credentials"],
        "scopes": ["roles"]}]}}, env={"APP_SECRET": SECRET})
    core = make_core(keys_dir, cfg.oidc.clients, Clock())
    client = core.clients.get("app")
    assert client is not None
    for _ in range(2):  # the second check uses the remembered argon2 result
        assert core.clients.secret_ok(client, SECRET)
    assert not core.clients.secret_ok(client, SECRET + "x")
    assert not core.clients.secret_ok(client, "")


def test_remembered_argon2_client_secret_is_a_keyed_hash_not_a_plain_digest(
        keys_dir: Path) -> None:
    """What a process keeps after an argon2 check is an HMAC under a key of that process, not
    the SHA-256 of the secret (a fast hash to guess the secret against in a memory dump); it
    still admits the secret and nothing else."""
    cfg = parse_config({**json.loads(demo_config(9).model_dump_json()), "oidc": {"clients": [{
        "client_id": "app", "client_secret": PasswordHasher(time_cost=1, memory_cost=1024)
        .hash(SECRET), "grant_types": ["client_credentials"], "scopes": ["roles"]}]}})
    core = make_core(keys_dir, cfg.oidc.clients, Clock())
    client = core.clients.get("app")
    assert client is not None and core.clients.secret_ok(client, SECRET)
    kept = core.clients._verified["app"]
    assert kept != hashlib.sha256(SECRET.encode()).digest()
    assert SECRET.encode() not in kept
    assert core.clients.secret_ok(client, SECRET)
    assert not core.clients.secret_ok(client, SECRET + "x")


@pytest.mark.parametrize("client, problem", [
    pytest.param({"client_id": "a"}, "needs a `client_secret`", id="basic-without-secret"),
    pytest.param({"client_id": "a", "token_endpoint_auth_method": "private_key_jwt"},
                 "needs `jwks`", id="private-key-jwt-without-jwks"),
    pytest.param({"client_id": "a", "token_endpoint_auth_method": "none",
                  "grant_types": ["client_credentials"]}, "public client",
                 id="public-client-credentials"),
    pytest.param({"client_id": "a", "client_secret": "x",
                  "redirect_uris": ["https://a.example/cb#f"]}, "without fragment",
                 id="redirect-uri-with-fragment"),
])
def test_client_config_mistakes_are_reported(client: dict[str, Any], problem: str) -> None:
    data = {**json.loads(demo_config(9).model_dump_json()), "oidc": {"clients": [client]}}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert problem in str(err.value)


def test_demo_clients_exist_only_in_demo_mode(keys_dir: Path) -> None:
    cfg = demo_config(9, keys_dir=keys_dir)
    args: dict[str, Any] = {"keys": KeyRing.load(keys_dir), "store": MemoryStore(),
                            "auditor": Auditor(MemorySink()), "roles": None}
    assert build_provider(cfg, demo=False, **args).core.clients.get("demo-web") is None
    assert build_provider(cfg, demo=True, **args).core.clients.get("demo-web") is not None


# -- private_key_jwt -------------------------------------------------------------------------

RP_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwk() -> dict[str, Any]:
    data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(RP_KEY.public_key()))
    return {**data, "kid": "rp-1", "alg": "ES256", "use": "sig"}


def assertion(clock: Clock, **over: Any) -> str:
    claims = {"iss": "svc", "sub": "svc", "aud": ISSUER + "/oauth2/token", "jti": "jti-1",
              "exp": int(clock.now) + 60, "iat": int(clock.now), **over}
    key = over.pop("_key", RP_KEY) if "_key" in over else RP_KEY
    claims.pop("_key", None)
    return jwt.encode(claims, key, "ES256", headers={"kid": "rp-1"})


def pkjwt_core(keys_dir: Path, clock: Clock) -> Core:
    client = OidcClientConfig(client_id="svc", token_endpoint_auth_method="private_key_jwt",
                              jwks={"keys": [_jwk()]}, grant_types=["client_credentials"],
                              scopes=["roles"])
    return make_core(keys_dir, [client], clock)


def cc(core: Core, token: str) -> dict[str, Any]:
    from idp.oidc.grants import token_endpoint

    return token_endpoint(core, token_request(grant_type="client_credentials",
                                              client_assertion_type=ASSERTION_TYPE,
                                              client_assertion=token)).body


def test_private_key_jwt_accepted_once_then_replay_refused(keys_dir: Path) -> None:
    clock = Clock()
    core = pkjwt_core(keys_dir, clock)
    token = assertion(clock)
    assert "access_token" in cc(core, token)
    assert cc(core, token)["error"] == "invalid_client"  # same jti again


@pytest.mark.parametrize("over", [
    pytest.param({"aud": "https://other.example/token"}, id="assertion-wrong-audience"),
    pytest.param({"exp": int(T0) - 120}, id="assertion-expired"),
    pytest.param({"exp": int(T0) + 7200}, id="assertion-too-long-lived"),
    pytest.param({"sub": "someone-else"}, id="assertion-sub-not-client"),
    pytest.param({"jti": None}, id="assertion-without-jti"),
    pytest.param({"_key": ec.generate_private_key(ec.SECP256R1())}, id="assertion-foreign-key"),
])
def test_private_key_jwt_refusals(keys_dir: Path, over: dict[str, Any]) -> None:
    clock = Clock()
    core = pkjwt_core(keys_dir, clock)
    body = cc(core, assertion(clock, **over))
    assert body["error"] == "invalid_client"


def test_private_key_jwt_hs256_with_public_key_refused(keys_dir: Path) -> None:
    clock = Clock()
    core = pkjwt_core(keys_dir, clock)
    import base64
    import hmac

    from cryptography.hazmat.primitives import serialization

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    pem = RP_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64(json.dumps({"alg": "HS256", "kid": "rp-1"}).encode())
    body = b64(json.dumps({"iss": "svc", "sub": "svc", "aud": ISSUER, "jti": "x",
                           "exp": int(T0) + 60}).encode())
    sig = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    forged = f"{head}.{body}.{sig}"
    assert cc(core, forged)["error"] == "invalid_client"


# -- subjects and claims ---------------------------------------------------------------------

def test_pairwise_subjects_are_stable_and_differ_per_sector(keys_dir: Path) -> None:
    def mk(cid: str, uri: str) -> OidcClientConfig:
        return OidcClientConfig(client_id=cid, client_secret="x", redirect_uris=[uri],
                                subject_type="pairwise")

    core = make_core(keys_dir, [mk("a", "https://a.example/cb"), mk("b", "https://b.example/cb"),
                                mk("a2", "https://a.example/other")], Clock())
    sub = {c: core.claims.subject(core.clients.get(c), ALICE) for c in ("a", "b", "a2")}  # type: ignore[arg-type]
    assert sub["a"] == sub["a2"] != sub["b"] and ALICE.subject not in sub.values()
    assert core.claims.subject(core.clients.get("a"), ALICE) == sub["a"]  # type: ignore[arg-type]


def test_access_token_is_rfc9068_profile(keys_dir: Path) -> None:
    clock = Clock()
    from idp.oidc.clients import demo_clients

    core = make_core(keys_dir, demo_clients(), clock)
    web = core.clients.get("demo-web")
    assert web is not None
    body = issue(core, Grant(web, ["openid", "roles"], ALICE, "n", "fam", int(T0) + 999, True))
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert header["typ"] == "at+jwt" and header["kid"]
    for name in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope", "auth_time"):
        assert name in claims
    assert claims["roles"] == ["arn:aws:iam::111122223333:role/Admin",
                               "arn:aws:iam::111122223333:role/ReadOnly"]
    assert claims["https://aws.amazon.com/tags"]["principal_tags"]["username"] == ["alice"]


def test_es256_access_tokens_when_configured(keys_dir: Path) -> None:
    clock = Clock()
    client = OidcClientConfig(client_id="svc", client_secret="x",
                              grant_types=["client_credentials"], scopes=["roles"])
    core = make_core(keys_dir, [client], clock, access_token_alg="ES256")
    svc = core.clients.get("svc")
    assert svc is not None
    at = issue(core, Grant(svc, ["roles"]))["access_token"]
    assert jwt.get_unverified_header(at)["alg"] == "ES256"
    assert core.signer.verify(at, typ=AT_TYP, audience=ISSUER)["sub"] == "svc"


def test_signing_never_parses_a_pem_key(keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys are imported once, when the signer is built (RECIPES: ~28 ms per RSA parse)."""
    from cryptography.hazmat.primitives import serialization

    signer = TokenSigner(KeyRing.load(keys_dir), ISSUER, Clock())

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("PEM parsed on the hot path")

    monkeypatch.setattr(serialization, "load_pem_private_key", refuse)
    monkeypatch.setattr(serialization, "load_der_private_key", refuse)
    token = signer.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 5}, typ=AT_TYP)
    assert signer.verify(token, typ=AT_TYP, audience=ISSUER)["iss"] == ISSUER


# -- verified-token cache: a second verify skips only the signature, never the rest ----------

def base64url(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def _cached(keys_dir: Path, clock: Clock, **claims: Any) -> tuple[TokenSigner, str]:
    signer = TokenSigner(KeyRing.load(keys_dir), ISSUER, clock)
    token = signer.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 60, "jti": "j",
                         **claims}, typ=AT_TYP)
    assert signer.verify(token, typ=AT_TYP, audience=ISSUER)["jti"] == "j"  # now cached
    return signer, token


def test_cached_token_still_expires(keys_dir: Path) -> None:
    clock = Clock()
    signer, token = _cached(keys_dir, clock)
    clock.now = T0 + 60
    with pytest.raises(OAuthError, match="token expired"):
        signer.verify(token, typ=AT_TYP, audience=ISSUER)


def test_cached_token_still_checked_for_audience_and_type(keys_dir: Path) -> None:
    signer, token = _cached(keys_dir, Clock())
    with pytest.raises(OAuthError, match="wrong audience"):
        signer.verify(token, typ=AT_TYP, audience="https://other.example")
    with pytest.raises(OAuthError, match="wrong token type"):
        signer.verify(token, typ="jwt", audience=ISSUER)


def test_tampered_copy_of_a_cached_token_is_refused(keys_dir: Path) -> None:
    """The cache key is the exact token: any changed byte misses it and fails the signature."""
    signer, token = _cached(keys_dir, Clock())
    head, payload, sig = token.split(".")
    forged_payload = base64url({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 60,
                                "jti": "j", "scope": "admin"})
    for forged in (f"{head}.{forged_payload}.{sig}", token[:-2] + ("AA" if token[-2:] != "AA"
                                                                     else "BB")):
        with pytest.raises(OAuthError):
            signer.verify(forged, typ=AT_TYP, audience=ISSUER)


def test_expired_or_bad_tokens_are_never_cached(keys_dir: Path) -> None:
    clock = Clock()
    signer = TokenSigner(KeyRing.load(keys_dir), ISSUER, clock)
    expired = signer.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) - 1}, typ=AT_TYP)
    foreign = signer.sign({"iss": "https://evil.example", "aud": ISSUER, "exp": int(T0) + 60},
                          typ=AT_TYP)
    for token in (expired, foreign):
        with pytest.raises(OAuthError):
            signer.verify(token, typ=AT_TYP, audience=ISSUER)
    assert not signer._verified


def test_verified_cache_is_bounded(keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.oidc import jose

    monkeypatch.setattr(jose, "VERIFIED_CACHE_SIZE", 3)
    signer = TokenSigner(KeyRing.load(keys_dir), ISSUER, Clock())
    tokens = [signer.sign({"iss": ISSUER, "aud": ISSUER, "exp": int(T0) + 60, "jti": str(i)},
                          typ=AT_TYP) for i in range(5)]
    for t in tokens:
        signer.verify(t, typ=AT_TYP, audience=ISSUER)
    assert list(signer._verified) == tokens[2:]


def test_revoked_token_inactive_even_when_its_signature_is_cached(keys_dir: Path) -> None:
    from idp.oidc.endpoints import introspect, revoke

    clock = Clock()
    client = OidcClientConfig(client_id="svc", client_secret="x",
                              grant_types=["client_credentials"], scopes=["roles"])
    core = make_core(keys_dir, [client], clock)
    svc = core.clients.get("svc")
    assert svc is not None
    at = issue(core, Grant(svc, ["roles"]))["access_token"]
    basic = "Basic " + base64.b64encode(b"svc:x").decode()

    def call(endpoint: Any) -> Any:
        return endpoint(core, OAuthRequest({"token": at}, authorization=basic))

    assert call(introspect).body["active"] is True
    assert at in core.signer._verified
    assert call(revoke).status == 200
    assert call(introspect).body == {"active": False}


def test_grantee_json_copies_every_field() -> None:
    """A grant's frozen person: every field round-trips, and the stored lists are copies."""
    from dataclasses import fields

    data = ALICE.to_json()
    assert set(data) == {f.name for f in fields(Grantee)}
    assert Grantee.from_json(json.loads(json.dumps(data))) == ALICE
    data["groups"].append("intruders")
    assert "intruders" not in ALICE.groups
