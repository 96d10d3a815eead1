"""The test kit: ``IdpServer`` start time and headless minting rates against the page-driven
path a browser test takes.

- start: ``IdpServer()`` to serving (free port, config validated, users file and metadata
  written, app built, thread started); the first start of a process also makes the signing
  keys, later ones share them.
- headless: ``saml_response`` (signed Response + assertion for the kit's SP), ``id_token``
  (ID token through the provider's claims code and signer), ``sts_credentials``
  (AssumeRoleWithSAML over HTTP with a minted assertion).
- page-driven: what a browser-level test does per sign-in, over HTTP with ``requests``: the
  login form (GET, POST with the password: argon2id), then for SAML an AuthnRequest to
  ``/saml/sso`` answered with the POST form, for OIDC ``/oauth2/authorize`` (the consent form
  the first time; the consent is remembered after) and the code redeemed at
  ``/oauth2/token``.

    .venv/bin/python bench/testkit_bench.py --seconds 3
"""

from __future__ import annotations

import argparse
import base64
import platform
import re
import statistics
import time
import uuid
import zlib
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from idp.saml.build import instant
from idp.testing import IdpServer, SamlSp, User

SP = "https://sp.bench.example/metadata"
ACS = "https://sp.bench.example/acs"
REDIRECT = "http://127.0.0.1:8400/callback"
_FIELD = re.compile(r'name="([^"]+)" value="([^"]*)"')


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - began)


def login_form(idp: IdpServer, s: requests.Session, user: str) -> None:
    page = s.get(idp.url + "/login?reauth=1", timeout=10).text
    token = dict(_FIELD.findall(page))["csrf_token"]
    resp = s.post(idp.url + "/login", allow_redirects=False, timeout=10, data={
        "username": user, "password": idp.passwords[user], "csrf_token": token})
    assert resp.status_code == 303, resp.status_code


def page_saml(idp: IdpServer) -> None:
    s = requests.Session()
    login_form(idp, s, "alice")
    xml = (f'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{uuid.uuid4().hex}" '
           f'Version="2.0" IssueInstant="{instant(time.time())}" '
           f'AssertionConsumerServiceURL="{ACS}"><saml:Issuer>{SP}</saml:Issuer>'
           f"</samlp:AuthnRequest>")
    value = base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()
    page = s.get(f"{idp.saml_sso_url}?{urlencode({'SAMLRequest': value})}", timeout=10).text
    assert "SAMLResponse" in page


def page_oidc(idp: IdpServer) -> None:
    s = requests.Session()
    login_form(idp, s, "alice")
    page = s.get(idp.url + "/oauth2/authorize", timeout=10, params={
        "client_id": "demo-web", "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "openid profile", "state": "x"}, allow_redirects=False)
    fields = dict(_FIELD.findall(page.text))
    resp = page
    if "resume" in fields:  # the first time: the consent form
        resp = s.post(idp.url + "/oauth2/authorize", allow_redirects=False, timeout=10, data={
            "csrf_token": fields["csrf_token"], "resume": fields["resume"],
            "decision": "allow"})
    m = re.search(r"code=([^&\"']+)", resp.headers.get("Location", "") or resp.text)
    assert m, resp.text[:300]
    code = parse_qs(urlsplit(f"?code={m.group(1)}").query)["code"][0]
    token = s.post(idp.url + "/oauth2/token", auth=("demo-web", "demo-web-secret"), timeout=10,
                   data={"grant_type": "authorization_code", "code": code,
                         "redirect_uri": REDIRECT}).json()
    assert "id_token" in token, token


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--starts", type=int, default=7)
    args = parser.parse_args()
    users = [User(username="alice", groups=["admins", "engineering"], email="a@example.org")]
    sp = SamlSp(entity_id=SP, acs_url=ACS)
    began = time.perf_counter()
    first = IdpServer(users=users, saml_sps=[sp]).start()
    cold = time.perf_counter() - began
    first.stop()
    warm = []
    for _ in range(args.starts):
        server = IdpServer(users=users, saml_sps=[sp]).start()
        warm.append(server.start_seconds)
        server.stop()
    print(f"python {platform.python_version()}, {args.seconds:g} s per rate")
    print(f"start: first in process (makes keys) {cold * 1000:.0f} ms; "
          f"later starts median {statistics.median(warm) * 1000:.0f} ms "
          f"(min {min(warm) * 1000:.0f}, max {max(warm) * 1000:.0f}, n={len(warm)})")
    with IdpServer(users=users, saml_sps=[sp]) as idp:
        rows = [
            ("SAML responses", rate(lambda: idp.saml_response(SP, "alice"), args.seconds),
             rate(lambda: page_saml(idp), args.seconds)),
            ("ID tokens", rate(lambda: idp.id_token("demo-web", "alice"), args.seconds),
             rate(lambda: page_oidc(idp), args.seconds)),
            ("STS credentials", rate(lambda: idp.sts_credentials("alice", "Admin"),
                                     args.seconds), None),
        ]
    print("| what | headless /s | page-driven /s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, fast, slow in rows:
        print(f"| {name} | {fast:,.0f} | " + (f"{slow:,.1f} | {fast / slow:,.0f}x |"
                                              if slow else "- | - |"))


if __name__ == "__main__":
    main()
