"""``idp mock-sp saml`` and ``idp mock-rp oidc`` against a kit IdP, driven like a browser
(redirects followed, POST forms submitted) with scripted logins."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.testing import IdpServer, SamlSp
from idp.testing.certs import self_signed
from idp.testing.serving import serve
from idp.web.mock_rp import MockRp
from idp.web.mock_rp import create_app as rp_app
from idp.web.mock_sp import MockSp
from idp.web.mock_sp import create_app as sp_app
from tests.fixtures.servers import free_port

_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_INPUT = re.compile(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"')
_CONTINUE = re.compile(r'(http://127\.0\.0\.1:\d+/callback\?[^"\'<\s]+)')


def browse(s: requests.Session, url: str, steps: int = 12) -> requests.Response:
    """GET ``url``, following redirects, submitting auto-POST forms and continue links."""
    resp = s.get(url, timeout=10)
    for _ in range(steps):
        form = _FORM.search(resp.text) if "text/html" in resp.headers.get(
            "Content-Type", "") else None
        if form and "password" not in resp.text:
            fields = {html.unescape(k): html.unescape(v) for k, v in _INPUT.findall(form[2])}
            resp = s.post(html.unescape(form[1]), data=fields, timeout=10)
            continue
        link = _CONTINUE.search(resp.text)
        if link and "/callback" not in resp.url:
            resp = s.get(html.unescape(link[1]), timeout=10)
            continue
        return resp
    raise AssertionError("too many steps")


@pytest.fixture
def saml_pair() -> Iterator[tuple[IdpServer, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key, cert = self_signed("mock-sp-test")
    sp = SamlSp(entity_id=base + "/metadata", acs_url=base + "/acs", slo_url=base + "/slo",
                certificate=cert)
    with IdpServer(saml_sps=[sp]) as idp, serve(
            sp_app(MockSp(base, idp.url, key, cert)), port=port):
        yield idp, base


def _last(s: requests.Session, base: str) -> dict[str, Any]:
    out: dict[str, Any] = s.get(base + "/last", timeout=5).json()
    return out


@pytest.mark.parametrize("binding", ["redirect", "post"])
@pytest.mark.parametrize("signed", ["0", "1"], ids=["unsigned", "signed"])
def test_mock_sp_signs_in_and_shows_what_it_received(saml_pair: tuple[IdpServer, str],
                                                     binding: str, signed: str) -> None:
    idp, base = saml_pair
    idp.next_login("alice")
    s = requests.Session()
    browse(s, f"{base}/login?binding={binding}&signed={signed}&force=1")
    last = _last(s, base)
    assert last["accepted"], last
    assert last["signed"] == {"response": True, "assertion": True}
    assert last["in_response_to"] == last["expected_in_response_to"]
    assert last["attributes"]["urn:oid:0.9.2342.19200300.100.1.1"] == ["alice"]
    assert last["authn_contexts"] == ["urn:oasis:names:tc:SAML:2.0:ac:classes:Password"]
    seen = idp.take_request("saml_sso")
    assert seen.parsed["binding"] == binding and seen.parsed["force_authn"] is True
    assert seen.parsed["signed"] is (signed == "1")


def test_mock_sp_single_logout(saml_pair: tuple[IdpServer, str]) -> None:
    idp, base = saml_pair
    idp.next_login("bob")
    s = requests.Session()
    browse(s, f"{base}/login")
    assert _last(s, base)["accepted"]
    browse(s, f"{base}/logout")
    assert _last(s, base) == {"logout": "LogoutResponse", "errors": [], "accepted": True}
    assert "Sign in" in s.get(idp.url + "/account", timeout=5).text  # the IdP session ended


def test_mock_sp_shows_a_refused_response(saml_pair: tuple[IdpServer, str]) -> None:
    idp, base = saml_pair
    s = requests.Session()
    post = idp.saml_response(base + "/metadata", "alice", preset="wrong_audience")
    s.post(post.url, data=post.data, timeout=5)
    last = _last(s, base)
    assert last["accepted"] is False and last["errors"]


@pytest.fixture
def rp_pair() -> Iterator[tuple[IdpServer, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = {"client_id": "mock-rp", "client_secret": "mock-rp-secret",
              "redirect_uris": [base + "/callback"], "post_logout_redirect_uris": [base + "/"]}
    with IdpServer(oidc_clients=[client]) as idp, serve(
            rp_app(MockRp(base, idp.url, "mock-rp", "mock-rp-secret",
                          "openid profile email offline_access")), port=port):
        yield idp, base


def test_mock_rp_code_pkce_claims_userinfo_refresh_and_logout(
        rp_pair: tuple[IdpServer, str]) -> None:
    idp, base = rp_pair
    idp.next_login("carol", consent="allow")
    s = requests.Session()
    browse(s, base + "/login")
    last = _last(s, base)
    assert last["id_token_claims"]["preferred_username"] == "carol", last
    assert last["userinfo"]["sub"] == last["id_token_claims"]["sub"]
    assert idp.take_request("authorize").parsed["code_challenge_method"] == "S256"
    s.get(base + "/refresh", timeout=5)
    assert "access_token" in _last(s, base)["refresh"]
    browse(s, base + "/logout")
    assert "Sign in" in s.get(idp.url + "/account", timeout=5).text


def test_mock_rp_shows_a_denied_consent(rp_pair: tuple[IdpServer, str]) -> None:
    idp, base = rp_pair
    idp.next_login("carol", consent="deny")
    s = requests.Session()
    browse(s, base + "/login")
    assert _last(s, base)["error"] == "access_denied"


@pytest.mark.parametrize("args", [["mock-sp", "saml", "--help"], ["mock-rp", "oidc", "--help"],
                                  ["mock-s3", "--help"]], ids=lambda a: a[0])
def test_mock_commands_are_registered(args: list[str]) -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "idp"), *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--port" in out.stdout
