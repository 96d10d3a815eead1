"""The web translation: the direct WSGI path and the Flask routes answer alike, with the
security headers, size limits and outage handling of the rest of the app."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from tests.fixtures.live import LiveIdp
from tests.fixtures.servers import free_port
from tests.helpers import config, make_app
from tests.oidc import rp

SERVICE_AUTH = "Basic " + base64.b64encode(b"demo-service:demo-service-secret").decode()
WEB_AUTH = "Basic " + base64.b64encode(b"demo-web:demo-web-secret").decode()


@pytest.mark.parametrize("ctype", [
    pytest.param("application/x-www-form-urlencoded", id="direct-wsgi-path"),
    pytest.param("application/x-www-form-urlencoded; charset=utf-8", id="charset-param"),
    pytest.param("multipart/form-data", id="flask-route"),
])
def test_both_paths_answer_alike_with_security_headers(demo_idp: LiveIdp, ctype: str) -> None:
    if ctype.startswith("multipart"):
        r = requests.post(f"{demo_idp.url}/oauth2/token", auth=rp.SERVICE, timeout=5,
                          files={"grant_type": (None, "client_credentials")})
    else:
        r = requests.post(f"{demo_idp.url}/oauth2/token", timeout=5,
                          data="grant_type=client_credentials",
                          headers={"Content-Type": ctype, "Authorization": SERVICE_AUTH})
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Content-Type"].startswith("application/json")


def test_repeated_parameter_is_invalid_request(demo_idp: LiveIdp) -> None:
    r = requests.post(f"{demo_idp.url}/oauth2/token", auth=rp.SERVICE, timeout=5,
                      data=[("grant_type", "client_credentials"), ("scope", "roles"),
                            ("scope", "roles")])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


def test_oversized_body_is_refused(demo_idp: LiveIdp) -> None:
    big = "grant_type=client_credentials&pad=" + "x" * (demo_idp.config.web.max_form_bytes + 1)
    r = requests.post(f"{demo_idp.url}/oauth2/token", data=big, timeout=5,
                      headers={"Content-Type": "application/x-www-form-urlencoded",
                               "Authorization": SERVICE_AUTH})
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
def test_store_down_is_temporarily_unavailable_json(tmp_path: Path, demo_keys_dir: Path,
                                                    path: str) -> None:
    port = free_port()  # nothing listens there
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir, store={
        "url": f"redis://127.0.0.1:{port}/0", "socket_timeout": 1.0}), demo=True)
    token = ""
    if path != "/oauth2/token":
        token = comps.extras["oidc"].core.signer.sign(
            {"iss": comps.config.issuer, "aud": comps.config.issuer, "exp": 4_000_000_000,
             "jti": "j", "client_id": "demo-service"}, typ="at+jwt")
    # a refresh grant reads the store (client credentials do not need it)
    auth = WEB_AUTH if path == "/oauth2/token" else SERVICE_AUTH
    r = app.test_client().post(path, headers={"Authorization": auth}, data={
        "grant_type": "refresh_token", "refresh_token": "rt", "token": token})
    assert r.status_code == 503 and r.json == {
        "error": "temporarily_unavailable",
        "error_description": "the service is temporarily unavailable"}
    comps.close()
