"""Reuse markers and family revocations live as long as the family they protect, no longer
(RFC 9700 §4.14.2, RFC 6749 §4.1.2): a rotated-out refresh token or a redeemed code is
remembered until its family ends, and a family revoked on reuse stays revoked until the last
access token it could have issued expires.  Pinned clock, memory store."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.audit import Auditor, MemorySink
from idp.config import OidcConfig
from idp.iam import demo_model
from idp.keys import KeyRing, init_keys
from idp.oidc import Grantee, OAuthRequest
from idp.oidc.authorize import Redirect, authorize
from idp.oidc.clients import demo_clients
from idp.oidc.core import Core
from idp.oidc.grants import s256, token_endpoint
from idp.oidc.state import family_key
from idp.oidc.tokens import Grant, issue
from idp.store import key
from idp.store.memory import MemoryStore

ISSUER = "http://127.0.0.1:9"
T0 = 1_800_000_000.0
FAMILY_TTL = 3 * 86400
ACCESS_TTL = 600
ALICE = Grantee("alice", "sub-alice", ["admins"], {}, int(T0), ["pwd"], "sid-1")
VERIFIER = "v" * 43


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(demo_keys_dir: Path) -> tuple[Core, MemoryStore, Clock]:
    init_keys(demo_keys_dir)
    clock = Clock()
    store = MemoryStore(clock=clock)
    core = Core.build(ISSUER, OidcConfig(clients=demo_clients(), refresh_family_ttl=FAMILY_TTL,
                                         access_token_ttl=ACCESS_TTL),
                      keys=KeyRing.load(demo_keys_dir), store=store,
                      auditor=Auditor(MemorySink()), roles=demo_model(ISSUER),
                      secret=b"s" * 32, clock=clock)
    return core, store, clock


def _refresh(core: Core, token: str) -> dict[str, str]:
    return token_endpoint(core, OAuthRequest({"grant_type": "refresh_token",
                                              "refresh_token": token,
                                              "client_id": "demo-cli"})).body


def test_refresh_reuse_revokes_the_family_until_its_last_access_token_expires(
        setup: tuple[Core, MemoryStore, Clock]) -> None:
    core, store, clock = setup
    family = core.new_id()
    first = issue(core, Grant(core.clients.get("demo-cli"), ["openid"], ALICE, None, family,
                              int(T0) + 1000, True))["refresh_token"]
    clock.now += 100
    second = _refresh(core, first)["refresh_token"]
    assert store.ttl(family_key("rtused", first)) == 900, "the marker lives as the family"
    clock.now += 800  # 100 s of the family left
    assert _refresh(core, first)["error"] == "invalid_grant"
    assert _refresh(core, second)["error"] == "invalid_grant", "the family is revoked"
    left = store.ttl(key("famrev", family))
    assert left is not None and left <= 100 + ACCESS_TTL, f"not {left} s"


def test_code_reuse_marker_and_revocation_live_as_long_as_the_family(
        setup: tuple[Core, MemoryStore, Clock]) -> None:
    core, store, clock = setup
    core.state.remember_consent("demo-cli", ALICE.subject, {"openid"}, 600)
    redirect = authorize(core, OAuthRequest({
        "response_type": "code", "client_id": "demo-cli",
        "redirect_uri": "http://127.0.0.1:7/callback", "scope": "openid",
        "code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}), ALICE)
    assert isinstance(redirect, Redirect)
    code = parse_qs(urlsplit(redirect.url).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "client_id": "demo-cli",
            "redirect_uri": "http://127.0.0.1:7/callback", "code_verifier": VERIFIER}
    assert "refresh_token" in token_endpoint(core, OAuthRequest(form)).body
    assert store.ttl(family_key("codeused", code)) == FAMILY_TTL
    clock.now += FAMILY_TTL - 50
    assert token_endpoint(core, OAuthRequest(form)).body["error"] == "invalid_grant"
    revoked = [k for k in store._data if k.startswith("idp:famrev:")]
    assert len(revoked) == 1
    left = store.ttl(revoked[0])
    assert left is not None and left <= 50 + ACCESS_TTL, f"not {left} s"
