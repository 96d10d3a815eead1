"""Opaque access tokens over HTTP: the direct WSGI path and the Flask routes agree, a revoked
token is inactive at once through either, a real relying party's code flow works with one,
``AssumeRoleWithWebIdentity`` refuses one, Redis holds only its hash, and a bad
``access_token_format`` stops ``idp config check`` and ``idp serve`` alike."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from click.testing import CliRunner
from lxml import etree

from idp.cli import main
from idp.config import Config, OidcClientConfig
from idp.demo import demo_config
from idp.oidc.state import OPAQUE_PREFIX
from idp.store import key
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.servers import free_port
from tests.helpers import config, make_app
from tests.oidc import rp
from tests.oidc.test_web import FORM, _fast_path, _run

SERVICE = ("opaque-service", "opaque-service-secret")
WEB = ("opaque-web", "opaque-web-secret", "http://127.0.0.1:8400/callback")
CLIENTS = [
    {"client_id": SERVICE[0], "client_secret": SERVICE[1], "grant_types": ["client_credentials"],
     "scopes": ["roles"], "require_consent": False, "access_token_format": "opaque"},
    {"client_id": WEB[0], "client_secret": WEB[1], "redirect_uris": [WEB[2]],
     "access_token_format": "opaque"},
]


def _basic(client: tuple[str, ...]) -> str:
    return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def _with_clients(cfg: Config) -> Config:
    clients = [OidcClientConfig.model_validate(c) for c in CLIENTS]
    return cfg.model_copy(update={"oidc": cfg.oidc.model_copy(update={"clients": clients})})


@pytest.fixture
def idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """The demo, plus an opaque-token service and web app."""
    port = free_port()
    cfg = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[tmp_path / "metadata"],
                      audit="none")
    with live_idp(_with_clients(cfg), demo=True, port=port) as live:
        yield live


def _service_token(base: str) -> str:
    r = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=SERVICE, timeout=5)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert isinstance(token, str) and token.startswith(OPAQUE_PREFIX)
    return token


def _post(idp: LiveIdp, fast: bool, path: str, token: str,
          client: tuple[str, ...] = rp.SERVICE) -> tuple[int, dict[str, str], Any]:
    layer = _fast_path(idp.app)
    return _run(layer if fast else layer.app, path, urlencode({"token": token}).encode(),
                {"Content-Type": FORM, "Authorization": _basic(client)})


# -- both paths ---------------------------------------------------------------------------

TOKENS = [
    pytest.param(lambda live: live, id="live-opaque-token"),
    pytest.param(lambda live: OPAQUE_PREFIX + "A" * 43, id="unknown-opaque-token"),
    pytest.param(lambda live: live + ".x", id="opaque-token-with-a-dot"),
    pytest.param(lambda live: live[:-1], id="opaque-token-truncated"),
]


@pytest.mark.parametrize("path", ["/oauth2/introspect", "/oauth2/revoke"])
@pytest.mark.parametrize("client", [pytest.param(rp.SERVICE, id="another-client"),
                                    pytest.param(SERVICE, id="its-client")])
@pytest.mark.parametrize("make", TOKENS)
def test_fast_path_and_flask_route_answer_alike_for_opaque_tokens(
        idp: LiveIdp, path: str, client: tuple[str, str], make: Any) -> None:
    token = make(_service_token(idp.url))
    fast = _post(idp, True, path, token, client)
    flask = _post(idp, False, path, token, client)
    assert fast == flask
    assert fast[0] < 500


@pytest.mark.parametrize("revoke_via", [pytest.param(True, id="revoked-via-fast-path"),
                                        pytest.param(False, id="revoked-via-flask-route")])
def test_revoked_opaque_token_is_inactive_at_once_in_both_paths(idp: LiveIdp,
                                                              revoke_via: bool) -> None:
    token = _service_token(idp.url)
    for fast in (True, False):
        got = _post(idp, fast, "/oauth2/introspect", token)[2]
        assert got["active"] is True and got["client_id"] == SERVICE[0]
    assert _post(idp, revoke_via, "/oauth2/revoke", token, SERVICE)[:1] == (200,)
    for fast in (True, False):
        assert _post(idp, fast, "/oauth2/introspect", token)[2] == {"active": False}


def test_another_client_cannot_revoke_an_opaque_token_in_either_path(idp: LiveIdp) -> None:
    token = _service_token(idp.url)
    for fast in (True, False):
        status, _, body = _post(idp, fast, "/oauth2/revoke", token, rp.SERVICE)
        assert (status, body["error"]) == (400, "unauthorized_client")
    assert _post(idp, True, "/oauth2/introspect", token)[2]["active"] is True


# -- a relying party, userinfo and the STS -------------------------------------------------

def test_code_flow_with_opaque_access_token_userinfo_and_family_revocation(
        idp: LiveIdp) -> None:
    base = idp.url
    session, token, nonce = rp.code_flow(base, WEB[0], WEB[2], secret=WEB[1])
    at = token["access_token"]
    assert at.startswith(OPAQUE_PREFIX)
    rp.verify_id_token(base, token["id_token"], WEB[0], nonce, at)  # at_hash of the reference
    info = session.get(f"{base}/oauth2/userinfo", timeout=5)
    assert info.status_code == 200 and info.json()["email"] == "alice@example.org"
    new = session.refresh_token(f"{base}/oauth2/token", auth=WEB[:2])
    assert new["access_token"].startswith(OPAQUE_PREFIX) and new["access_token"] != at
    r = requests.post(f"{base}/oauth2/revoke", data={"token": new["refresh_token"]},
                      auth=WEB[:2], timeout=5)
    assert r.status_code == 200
    for access in (at, new["access_token"]):  # RFC 7009 §2.1: the grant's tokens go too
        r = requests.get(f"{base}/oauth2/userinfo", timeout=5,
                         headers={"Authorization": f"Bearer {access}"})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_assume_role_with_web_identity_refuses_an_opaque_access_token(idp: LiveIdp) -> None:
    """AWS needs a JWT to check; a reference has nothing to verify."""
    _, token, _ = rp.code_flow(idp.url, WEB[0], WEB[2], secret=WEB[1])
    r = requests.post(f"{idp.url}/sts", timeout=5, data={
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
        "RoleArn": "arn:aws:iam::111122223333:role/ReadOnly", "RoleSessionName": "alice",
        "WebIdentityToken": token["access_token"]})
    assert r.status_code == 400
    root = etree.fromstring(r.content)
    ns = {"s": root.nsmap[None]}
    assert root.findtext("s:Error/s:Code", namespaces=ns) == "InvalidIdentityToken"
    assert "opaque access token" in (root.findtext("s:Error/s:Message", namespaces=ns) or "")


# -- Redis ---------------------------------------------------------------------------------

def test_opaque_token_is_not_stored_in_clear_in_redis(tmp_path: Path, demo_keys_dir: Path,
                                                      redis_url: str,
                                                      redis_server: RedisServer) -> None:
    cfg = _with_clients(config(tmp_path, demo_keys_dir, store={"url": redis_url}))
    app, comps, _ = make_app(cfg, demo=True)
    try:
        client = app.test_client()
        tokens = []
        for _ in range(3):
            r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": _basic(SERVICE)})
            assert r.status_code == 200, r.text
            tokens.append(r.json["access_token"])
        introspected = client.post("/oauth2/introspect", data={"token": tokens[0]},
                                   headers={"Authorization": _basic(rp.SERVICE)}).json
        assert introspected["active"] is True
        redis = redis_server.client()
        keys = list(redis.scan_iter(count=1000))
        values = [redis.get(k) or b"" for k in keys if redis.type(k) == b"string"]
        assert keys, "the tokens are in this Redis"
        for token in tokens:
            secret = token[len(OPAQUE_PREFIX):].encode()
            assert not any(secret in blob for blob in [*keys, *values])
            k = key("at", hashlib.sha256(token.encode()).hexdigest())
            assert 0 < redis.ttl(k) <= cfg.oidc.access_token_ttl
        assert client.post("/oauth2/revoke", data={"token": tokens[0]},
                           headers={"Authorization": _basic(SERVICE)}).status_code == 200
        assert not redis.exists(key("at", hashlib.sha256(tokens[0].encode()).hexdigest()))
        assert client.post("/oauth2/introspect", data={"token": tokens[0]},
                           headers={"Authorization": _basic(rp.SERVICE)}).json == {
                               "active": False}
    finally:
        comps.close()


# -- configuration -------------------------------------------------------------------------

def test_config_check_and_serve_refuse_an_unknown_access_token_format(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text(f"""
issuer: http://127.0.0.1:8000
secret_key: {"s" * 40}
store: {{url: "memory://"}}
directory: {{type: file, file: {{path: {tmp_path / "users.yaml"}}}}}
keys: {{dir: {tmp_path / "keys"}}}
oidc:
  clients:
    - {{client_id: svc, client_secret: x, access_token_format: reference}}
""")
    checked = CliRunner().invoke(main, ["config", "check", str(path)])
    assert checked.exit_code == 2
    assert "oidc.clients[0].access_token_format: Input should be 'jwt' or 'opaque'" in \
        checked.output
    served = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert served.exit_code == 2 and served.output == checked.output


@pytest.mark.parametrize("path, form", [
    pytest.param("/oauth2/token", {"grant_type": "client_credentials"}, id="issuing"),
    pytest.param("/oauth2/introspect", {"token": OPAQUE_PREFIX + "A" * 43}, id="introspecting"),
    pytest.param("/oauth2/revoke", {"token": OPAQUE_PREFIX + "A" * 43}, id="revoking"),
])
def test_store_down_is_temporarily_unavailable_for_opaque_tokens(
        tmp_path: Path, demo_keys_dir: Path, path: str, form: dict[str, str]) -> None:
    """An opaque token needs the store where a client's JWT does not (issuing one): with the
    store down, every step is the endpoints' own 503, never a 500 or a token not stored."""
    port = free_port()  # nothing listens there
    cfg = _with_clients(config(tmp_path, demo_keys_dir, store={
        "url": f"redis://127.0.0.1:{port}/0", "socket_timeout": 1.0}))
    app, comps, _ = make_app(cfg, demo=True)
    try:
        auth = _basic(SERVICE if path != "/oauth2/introspect" else rp.SERVICE)
        r = app.test_client().post(path, data=form, headers={"Authorization": auth})
        assert r.status_code == 503 and r.json is not None
        assert r.json["error"] == "temporarily_unavailable"
    finally:
        comps.close()
