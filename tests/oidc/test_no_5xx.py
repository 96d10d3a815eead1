"""Inputs that once answered 500: each now gets the protocol's own error (OAuth error by
redirect or on the error page, ``401 invalid_client`` for a malformed client assertion)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from idp.oidc.client_auth import ASSERTION_TYPE
from idp.oidc.core import parse_uint
from tests.fixtures.live import LiveIdp
from tests.oidc import test_core
from tests.oidc.test_security import authorize_url, web_params

BAD_MAX_AGE = [
    pytest.param("\u00b2", id="superscript-two-isdigit-but-not-int"),
    pytest.param("\u0661\u0662", id="arabic-indic-digits-int-accepts"),
    pytest.param("\uff11", id="fullwidth-digit"),
    pytest.param("9" * 5000, id="over-int-max-str-digits"),
    pytest.param("99999999999", id="eleven-digits"),
    pytest.param("-1", id="negative"),
    pytest.param("+1", id="plus-sign"),
    pytest.param(" 1", id="leading-space"),
    pytest.param("1_0", id="underscore-separator"),
]


@pytest.mark.parametrize("max_age", BAD_MAX_AGE)
def test_bad_max_age_is_invalid_request_at_the_redirect_uri(demo_idp: LiveIdp,
                                                            max_age: str) -> None:
    r = requests.get(authorize_url(demo_idp.url, **web_params(max_age=max_age)), timeout=5,
                     allow_redirects=False)
    assert r.status_code == 302, r.text[:200]
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["invalid_request"] and q["state"] == ["st-1"]
    assert "max_age" in q["error_description"][0]


@pytest.mark.parametrize("max_age", BAD_MAX_AGE[:4])
def test_bad_max_age_with_unverified_redirect_uri_is_an_error_page(demo_idp: LiveIdp,
                                                                   max_age: str) -> None:
    params = web_params(max_age=max_age, redirect_uri="https://evil.example/cb")
    r = requests.get(authorize_url(demo_idp.url, **params), timeout=5, allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "text/html" in r.headers["Content-Type"]


def test_plain_max_age_still_asks_for_a_login(demo_idp: LiveIdp) -> None:
    r = requests.get(authorize_url(demo_idp.url, **web_params(max_age="300")), timeout=5,
                     allow_redirects=False)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login"


@pytest.mark.parametrize("value, expected", [
    pytest.param("0", 0, id="zero"), pytest.param("0042", 42, id="leading-zeros"),
    pytest.param("9999999999", 9999999999, id="ten-digits"),
    pytest.param("", None, id="empty"), pytest.param("\u0661", None, id="arabic-indic"),
    pytest.param("1e3", None, id="exponent"), pytest.param("12 ", None, id="trailing-space"),
])
def test_parse_uint_takes_ascii_digits_only(value: str, expected: int | None) -> None:
    assert parse_uint(value) == expected


# -- private_key_jwt client assertions that are not JSON objects ----------------------------

def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _assertion(header: Any, payload: Any) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}." + \
        _b64(b"not-a-signature")


ASSERTIONS = [
    pytest.param(_assertion({"alg": "RS256"}, ["iss", "demo-web"]), id="payload-json-list"),
    pytest.param(_assertion({"alg": "RS256"}, "demo-web"), id="payload-json-string"),
    pytest.param(_assertion({"alg": "RS256"}, 42), id="payload-json-number"),
    pytest.param(_assertion({"alg": "RS256"}, None), id="payload-json-null"),
    pytest.param(_assertion(["RS256"], {"iss": "demo-web"}), id="header-json-list"),
    pytest.param(_assertion("RS256", {"iss": "demo-web"}), id="header-json-string"),
    pytest.param(_assertion({"alg": ["RS256"]}, {"iss": "demo-web"}), id="header-alg-list"),
    pytest.param(_assertion({"alg": "RS256"}, {"iss": ["demo-web"]}), id="payload-iss-list"),
    pytest.param("e30.e30", id="two-segments"),
    pytest.param("!!.@@.##", id="not-base64url"),
    pytest.param(_b64(b"\xff\xfe") + ".e30.e30", id="header-not-utf8"),
]
ENDPOINTS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("assertion", ASSERTIONS)
def test_malformed_client_assertion_is_invalid_client(demo_idp: LiveIdp, path: str,
                                                      assertion: str) -> None:
    r = requests.post(demo_idp.url + path, timeout=5, data={
        "grant_type": "client_credentials", "token": "x",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("payload", [
    pytest.param(b'["svc"]', id="signed-json-list"),
    pytest.param(b'"svc"', id="signed-json-string"),
    pytest.param(b'{"iss": "svc", "sub": "svc", "aud": [{"x": 1}], "jti": "j", "exp": 1}',
                 id="signed-unhashable-audience"),
])
def test_correctly_signed_assertion_that_is_not_a_claims_object_is_invalid_client(
        keys_dir: Any, payload: bytes) -> None:
    """Signed with the registered key of a private_key_jwt client: the shape is still
    checked (RFC 7519 §7.2 step 10)."""
    clock = test_core.Clock()
    core = test_core.pkjwt_core(keys_dir, clock)
    token = jwt.api_jws.encode(payload, test_core.RP_KEY, algorithm="ES256",
                               headers={"kid": "rp-1"})
    assert test_core.cc(core, token)["error"] == "invalid_client"


keys_dir = test_core.keys_dir
