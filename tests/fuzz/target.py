"""The app under fuzzing: the demo configuration, built once per run, and how requests reach it.

Requests go through the whole WSGI stack (``app.wsgi_app``: the fast path of
:mod:`idp.web.fastpath` in front of Flask, as ``idp serve`` mounts it) and, for the routes the
fast path serves, also straight to Flask (the fast path's layers peeled off), so both
implementations of those endpoints see every generated request.
"""

from __future__ import annotations

import atexit
import base64
import functools
import html
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from flask import Flask
from werkzeug.test import Client, TestResponse

from idp.app import Components, build_components, create_app
from idp.audit import Auditor, MemorySink
from idp.demo import demo_config
from idp.login.csrf import CSRF_COOKIE, csrf_token
from idp.logs import RequestIdMiddleware
from idp.oidc.jose import unverified_header
from idp.saml.messages import sign_redirect
from idp.web.oidc_fast import FastOAuth
from idp.web.saml_fast import FastSso
from idp.web.sts_fast import FastSts
from tests.fuzz.model import FuzzRequest
from tests.fuzz.values import ISSUER, SP_ENTITY, Ctx
from tests.saml.spapps import make_cert

FAST_ROUTES = ("/sts", "/oauth2/token", "/oauth2/introspect", "/oauth2/revoke")
# /saml/sso has a direct path too, but an AuthnRequest's ID is one-time: the same request sent
# a second time is a replay, so its parity with Flask is tested with fresh requests instead
# (tests/saml/test_sso_fast.py); here it goes through the whole stack only.
BINDING = "fuzz-csrf-binding"
SP_METADATA = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
 xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
 <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
  protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}
  </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
   Location="{entity}/slo"/>
  <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
   Location="{entity}/acs" index="0"/>
 </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


@dataclass
class Target:
    app: Flask
    comps: Components
    ctx: Ctx
    creds: Credentials
    full: Client
    flask_only: Client
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    known_hits: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def rules(self) -> dict[str, list[str]]:
        """Every route of the app with the methods it allows (HEAD, OPTIONS left out)."""
        out: dict[str, set[str]] = {}
        for r in self.app.url_map.iter_rules():
            out.setdefault(r.rule, set()).update((r.methods or set()) - {"HEAD", "OPTIONS"})
        return {k: sorted(v) for k, v in sorted(out.items())}

    def paths(self, rule: str) -> list[str]:
        return ["wsgi", "flask"] if rule in FAST_ROUTES else ["wsgi"]

    def sign(self, req: FuzzRequest) -> None:
        """SigV4-sign (header or presigned query) with real STS credentials."""
        if req.sigv4 is None:
            return
        svc = req.rule.strip("/")
        url = ISSUER + req.path + (f"?{req.query}" if req.query else "")
        # a presigned URL signs the query only (botocore would read a body into it)
        aws = AWSRequest(method=req.method, url=url,
                         data=b"" if req.sigv4 == "presign" else req.body,
                         headers={"Content-Type": req.content_type or ""})
        if req.sigv4 == "presign":
            SigV4QueryAuth(self.creds, svc, "us-east-1", expires=300).add_auth(aws)
            req.query = urlsplit(aws.url).query
        else:
            SigV4Auth(self.creds, svc, "us-east-1").add_auth(aws)
            for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
                if name in aws.headers:
                    req.headers[name] = aws.headers[name]

    def send(self, req: FuzzRequest, via: str, *, generated: bool = False) -> TestResponse:
        """Send ``req`` through ``via`` ("wsgi": the whole stack, "flask": Flask alone);
        ``generated`` requests are counted for the run's summary."""
        headers = dict(req.headers)
        cookies = []
        if req.signed_in:
            sess = self.comps.sessions.create(self._alice)
            cookies.append(f"{self.comps.config.session.cookie_name}={sess.id}")
        if req.csrf:
            cookies.append(f"{CSRF_COOKIE}={BINDING}")
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        if req.content_type is not None:
            headers["Content-Type"] = req.content_type
        client = self.full if via == "wsgi" else self.flask_only
        resp = client.open(req.path, method=req.method, query_string=req.query,
                           data=req.body, headers=headers, base_url=ISSUER)
        if generated:
            self.counts[(req.rule, via)] += 1
            self.statuses[(req.rule, resp.status_code)] += 1
        return resp

    @property
    def _alice(self) -> Any:
        ident = self.comps.directory.lookup("alice")
        assert ident is not None
        return ident


def _flask_only(app: Flask) -> Any:
    """``app.wsgi_app`` without the fast-path layers (what answers when they pass)."""
    outer: Any = app.wsgi_app
    chain: list[Any] = []
    while isinstance(outer, (RequestIdMiddleware, FastOAuth, FastSts, FastSso)):
        if not isinstance(outer, RequestIdMiddleware):
            chain.append(outer)
        outer = outer.app
    assert len(chain) == 3, "the fast path is not mounted as the fuzz suite expects"
    return outer


def _tokens(target_app: Flask, comps: Components, ctx: Ctx) -> None:
    """An ID, access and refresh token from a real authorization-code flow (alice, demo-web)."""
    client = Client(target_app, use_cookies=False)
    sess = comps.sessions.create(comps.directory.lookup("alice"))  # type: ignore[arg-type]
    cookie = {"Cookie": f"{comps.config.session.cookie_name}={sess.id}; "
                        f"{CSRF_COOKIE}={BINDING}"}
    redirect = "http://127.0.0.1:8400/callback"
    query = urlencode({"client_id": "demo-web", "redirect_uri": redirect,
                       "response_type": "code", "state": "s", "nonce": "n",
                       "scope": "openid profile groups roles offline_access"})
    r = client.get(f"/oauth2/authorize?{query}", headers=cookie, base_url=ISSUER)
    if r.status_code == 200:
        resume = re.search(r'name="resume" value="([^"]+)"', r.get_data(as_text=True))
        assert resume, "no consent form"
        r = client.post("/oauth2/authorize", headers=cookie, base_url=ISSUER, data={
            "resume": resume.group(1), "decision": "allow", "csrf_token": ctx.csrf_token})
    page = html.unescape(r.get_data(as_text=True))
    m = re.search(r"[?&]code=([^&\"]+)", r.headers.get("Location") or page)
    assert m, page[:500]
    code = m.group(1)
    basic = "Basic " + base64.b64encode(b"demo-web:demo-web-secret").decode()
    r = client.post("/oauth2/token", base_url=ISSUER, headers={"Authorization": basic}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect})
    assert r.status_code == 200, r.get_data(as_text=True)
    doc = r.get_json()
    ctx.id_token, ctx.access_token = doc["id_token"], doc["access_token"]
    ctx.kid = unverified_header(ctx.id_token)["kid"]
    ctx.refresh_token = doc.get("refresh_token", "rt")


def _credentials(target_app: Flask, ctx: Ctx) -> Credentials:
    """Temporary credentials for one of alice's roles (AssumeRoleWithWebIdentity with her ID
    token): Admin, whose policies let ``/iam`` answer, else ReadOnly."""
    client = Client(target_app, use_cookies=False)
    for role in ("Admin", "ReadOnly"):
        r = client.post("/sts", base_url=ISSUER, data={
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
            "RoleArn": f"arn:aws:iam::111122223333:role/{role}", "RoleSessionName": "fuzz",
            "WebIdentityToken": ctx.id_token})
        body = r.get_data(as_text=True)
        if r.status_code == 200:
            break
    assert r.status_code == 200, body

    def pick(tag: str) -> str:
        m = re.search(f"<{tag}>([^<]+)</{tag}>", body)
        assert m, tag
        return m.group(1)

    return Credentials(pick("AccessKeyId"), pick("SecretAccessKey"), pick("SessionToken"))


_TARGET: Target | None = None


def target() -> Target:
    """The app under fuzzing, built on first use (collection needs its routes)."""
    global _TARGET
    if _TARGET is None:
        tmp = Path(tempfile.mkdtemp(prefix="idp-fuzz-"))
        atexit.register(shutil.rmtree, tmp, True)
        # a service provider that signs its requests (AuthnRequestsSigned), key known here
        key_pem, cert_pem = make_cert("fuzz-sp")
        (tmp / "metadata").mkdir()
        body = "".join(line for line in cert_pem.splitlines() if "-----" not in line)
        (tmp / "metadata" / "fuzz-sp.xml").write_text(SP_METADATA.format(entity=SP_ENTITY,
                                                                         cert=body))
        cfg = demo_config(8000, keys_dir=tmp / "keys", metadata_dirs=[tmp / "metadata"],
                          audit="none")
        comps = build_components(cfg, demo=True, auditor=Auditor(MemorySink()))
        app = create_app(cfg, comps, demo=True)
        assert comps.extras["saml_metadata_problems"] == []
        sp_key = serialization.load_pem_private_key(key_pem.encode(), None)
        ctx = Ctx(csrf_token=csrf_token(comps.secret, BINDING),
                  sign=comps.extras["oidc"].core.signer.sign,
                  saml_sign=functools.partial(sign_redirect, key=sp_key))
        _tokens(app, comps, ctx)
        creds = _credentials(app, ctx)
        _TARGET = Target(app, comps, ctx, creds, Client(app, use_cookies=False),
                         Client(_flask_only(app), use_cookies=False))
    return _TARGET
