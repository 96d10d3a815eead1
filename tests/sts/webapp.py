"""The STS web layer in process: the whole WSGI app (with the fast path for form ``POST /sts``)
and the Flask app alone (the blueprint's routes), to send the same requests through both."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from flask import Flask
from werkzeug.test import Client, TestResponse

from idp.app import Components
from tests.helpers import config, make_app
from tests.sts.conftest import USER_KEY

ISSUER = "http://127.0.0.1:8000"
USER = Credentials(USER_KEY.access_key_id, USER_KEY.secret_access_key)
SERVICE_AUTH = ("demo-service", "demo-service-secret")
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def flask_only(app: Flask) -> Any:
    """Flask's own ``wsgi_app``, under the fast paths (and ProxyFix) that wrap it."""
    inner: Any = app.wsgi_app
    while not inspect.ismethod(inner):
        inner = inner.app
    return inner


@dataclass
class WebApp:
    app: Flask
    comps: Components
    fast: Client  # the app as served: form POST /sts takes the fast path
    flask: Client  # the Flask routes alone

    def both(self) -> list[tuple[str, Client]]:
        return [("fast path", self.fast), ("flask route", self.flask)]

    def close(self) -> None:
        self.comps.close()


def web_app(tmp_path: Path, keys_dir: Path, **sections: Any) -> WebApp:
    """The demo (its OAuth clients) with the long-term key of tests/sts and ``sections``."""
    sections.setdefault("sts", {"access_keys": [{
        "access_key_id": USER_KEY.access_key_id,
        "secret_access_key": USER_KEY.secret_access_key,
        "principal_arn": USER_KEY.principal_arn}]})
    app, comps, _ = make_app(config(tmp_path, keys_dir, **sections), demo=True)
    return WebApp(app, comps, Client(app), Client(flask_only(app)))


def signed(creds: Credentials, path: str, params: Mapping[str, str], service: str = "sts",
           region: str = "us-east-1") -> tuple[dict[str, str], bytes]:
    """Headers and body of a form POST signed by botocore's SigV4 signer."""
    aws = AWSRequest(method="POST", url=ISSUER + path, data=urlencode(params),
                     headers={"Content-Type": FORM})
    SigV4Auth(creds, service, region).add_auth(aws)
    body = aws.body if isinstance(aws.body, bytes) else str(aws.body or "").encode()
    return dict(aws.headers.items()), body


def post(client: Client, path: str, body: bytes | str, headers: Mapping[str, str] | None = None,
         **kw: Any) -> TestResponse:
    return client.post(path, data=body, headers={"Content-Type": FORM, **(headers or {})},
                       base_url=ISSUER, **kw)


def sts_call(client: Client, params: Mapping[str, str], creds: Credentials | None = None,
             path: str = "/sts", service: str = "sts") -> TestResponse:
    full = {"Version": "2011-06-15" if service == "sts" else "2010-05-08", **params}
    if creds is None:
        return post(client, path, urlencode(full))
    headers, body = signed(creds, path, full, service)
    return post(client, path, body, headers)


def aws_code(r: TestResponse) -> str | None:
    m = re.search(r"<Code>([^<]*)</Code>", r.get_data(as_text=True))
    return m[1] if m else None


def session_from(r: TestResponse) -> Credentials:
    text = r.get_data(as_text=True)
    assert r.status_code == 200, text

    def f(name: str) -> str:
        m = re.search(f"<{name}>([^<]*)</{name}>", text)
        assert m, name
        return m[1]
    return Credentials(f("AccessKeyId"), f("SecretAccessKey"), f("SessionToken"))
