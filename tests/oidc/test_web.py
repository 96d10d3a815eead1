"""The web translation: the direct WSGI path and the Flask routes answer alike, with the
security headers, size limits and outage handling of the rest of the app."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idp.oidc.client_auth import ASSERTION_TYPE
from idp.web.oidc_fast import FastOAuth
from tests.fixtures.live import LiveIdp
from tests.fixtures.servers import free_port
from tests.helpers import config, make_app
from tests.oidc import rp

SERVICE_AUTH = "Basic " + base64.b64encode(b"demo-service:demo-service-secret").decode()
WEB_AUTH = "Basic " + base64.b64encode(b"demo-web:demo-web-secret").decode()


@pytest.mark.parametrize("ctype", [
    pytest.param("application/x-www-form-urlencoded", id="direct-wsgi-path"),
    pytest.param("application/x-www-form-urlencoded; charset=utf-8", id="charset-param"),
    pytest.param("Application/X-WWW-Form-Urlencoded", id="media-type-case-insensitive"),
])
def test_form_posts_answer_with_security_headers(demo_idp: LiveIdp, ctype: str) -> None:
    r = requests.post(f"{demo_idp.url}/oauth2/token", timeout=5,
                      data="grant_type=client_credentials",
                      headers={"Content-Type": ctype, "Authorization": SERVICE_AUTH})
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Content-Type"].startswith("application/json")


NOT_FORM = [
    pytest.param({"json": {"grant_type": "client_credentials", "token": "x"}}, id="json-body"),
    pytest.param({"files": {"grant_type": (None, "client_credentials"), "token": (None, "x")}},
                 id="multipart-body"),
    pytest.param({"data": b"grant_type=client_credentials&token=x",
                  "headers": {"Content-Type": "text/plain"}}, id="text-plain-body"),
    pytest.param({"data": b"grant_type=client_credentials&token=x"}, id="no-content-type"),
]


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke",
                                  "/oauth2/device_authorization"])
@pytest.mark.parametrize("body", NOT_FORM)
def test_only_form_encoded_bodies_are_accepted(demo_idp: LiveIdp, path: str,
                                               body: dict[str, Any]) -> None:
    """RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1, RFC 8628 §3.1: form-encoded only."""
    auth = rp.SERVICE if path != "/oauth2/device_authorization" else None
    r = requests.post(demo_idp.url + path, auth=auth, timeout=5, **body)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    assert "application/x-www-form-urlencoded" in r.json()["error_description"]
    assert r.headers["Cache-Control"] == "no-store"


# -- parity: the fast WSGI path and the Flask routes behind it answer alike ------------------

def _fast_path(app: Flask) -> FastOAuth:
    layer: Any = app.wsgi_app
    while not isinstance(layer, FastOAuth):
        layer = layer.app
    return layer


def _run(wsgi: Any, path: str, body: bytes, headers: dict[str, str]
         ) -> tuple[int, dict[str, str], Any]:
    env = EnvironBuilder(path=path, method="POST", data=body, headers=headers).get_environ()
    if "Content-Type" not in headers:
        env.pop("CONTENT_TYPE", None)
    chunks, status, hdrs = run_wsgi_app(wsgi, env, buffered=True)
    raw = b"".join(chunks)
    # Flask also hands out its CSRF cookie; only the fast path skips it
    kept = {k: v for k, v in hdrs.items() if k not in ("Set-Cookie", "Content-Length")}
    return int(status.split()[0]), kept, json.loads(raw)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _assertion(header: Any, payload: Any) -> str:
    return (f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."
            + _b64(b"sig"))


FORM = "application/x-www-form-urlencoded"
ASSERTED = ("grant_type=client_credentials&token=x&client_assertion_type="
            + quote(ASSERTION_TYPE, safe="") + "&client_assertion=")
PARITY = [
    pytest.param(b"grant_type=client_credentials&token=x", {"Content-Type": FORM},
                 id="good-form"),
    pytest.param(b"grant_type=client_credentials&token=x",
                 {"Content-Type": FORM + "; charset=utf-8"}, id="form-with-charset"),
    pytest.param(b'{"grant_type": "client_credentials"}', {"Content-Type": "application/json"},
                 id="json-body"),
    pytest.param(b"--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n"
                 b"client_credentials\r\n--b--\r\n",
                 {"Content-Type": "multipart/form-data; boundary=b"}, id="multipart-body"),
    pytest.param(b"grant_type=client_credentials", {}, id="no-content-type"),
    pytest.param(b"grant_type=client_credentials", {"Content-Type": "text/plain"},
                 id="text-plain"),
    pytest.param(b"grant_type=client_credentials&scope=roles&scope=roles",
                 {"Content-Type": FORM}, id="repeated-parameter"),
    pytest.param(b"grant_type=client_credentials&token=%ff%fe", {"Content-Type": FORM},
                 id="form-value-not-utf8"),
    pytest.param(b"grant_type=client_credentials&token=\xff", {"Content-Type": FORM},
                 id="form-body-not-utf8"),
    pytest.param(b"grant_type=client_credentials" + b"&x=1" * 99, {"Content-Type": FORM},
                 id="form-100-fields"),
    pytest.param(b"grant_type=client_credentials" + b"&x=1" * 100, {"Content-Type": FORM},
                 id="form-101-fields"),
    pytest.param(b"grant_type=client_credentials&pad=" + b"x" * (300 * 1024),
                 {"Content-Type": FORM}, id="form-body-too-large"),
    pytest.param(b"grant_type=client_credentials", {"Content-Type": FORM, "Authorization":
                                                    "Basic !!!"}, id="malformed-basic"),
    *[pytest.param((ASSERTED + _assertion(h, p)).encode(),
                   {"Content-Type": FORM, "Authorization": ""}, id=f"assertion-{name}")
      for name, h, p in [("payload-list", {"alg": "RS256"}, ["demo-web"]),
                         ("payload-string", {"alg": "RS256"}, "demo-web"),
                         ("payload-number", {"alg": "RS256"}, 7),
                         ("payload-null", {"alg": "RS256"}, None),
                         ("header-list", ["RS256"], {"iss": "demo-web"})]],
]


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
@pytest.mark.parametrize("body, headers", PARITY)
def test_fast_path_and_flask_route_answer_alike(demo_idp: LiveIdp, path: str, body: bytes,
                                                headers: dict[str, str]) -> None:
    fast = _fast_path(demo_idp.app)
    headers = {"Authorization": SERVICE_AUTH, **headers}
    if not headers["Authorization"]:
        del headers["Authorization"]
    got_fast = _run(fast, path, body, headers)
    got_flask = _run(fast.app, path, body, headers)
    assert got_fast[0] == got_flask[0] and got_fast[1] == got_flask[1]
    if path == "/oauth2/token" and got_fast[0] == 200:  # fresh tokens: same fields
        assert got_fast[2].keys() == got_flask[2].keys()
    else:
        assert got_fast[2] == got_flask[2]
    assert got_fast[0] < 500


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
