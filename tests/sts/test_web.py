"""The STS web layer: the fast WSGI path and the Flask route answer ``POST /sts`` alike (good
and malformed requests), and ``POST /sts/decide`` authenticates its client before it reads a
body it then bounds in size and depth."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client, TestResponse

from idp.sts.authz import MAX_JSON_DEPTH, parse_bounded_json
from tests.sts.webapp import (
    SERVICE_AUTH,
    USER,
    WebApp,
    aws_code,
    post,
    signed,
    web_app,
)

WHO = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}


@pytest.fixture
def web(tmp_path: Path, demo_keys_dir: Path) -> Iterator[WebApp]:
    w = web_app(tmp_path, demo_keys_dir)
    yield w
    w.close()


# -- the two paths of POST /sts ------------------------------------------------------------

def _signed_who(region: str = "us-east-1") -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    def build() -> tuple[str, bytes, dict[str, str]]:
        headers, body = signed(USER, "/sts", WHO, region=region)
        return "", body, headers
    return build


def _signed_action(params: dict[str, str]) -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    def build() -> tuple[str, bytes, dict[str, str]]:
        headers, body = signed(USER, "/sts", {"Version": "2011-06-15", **params})
        return "", body, headers
    return build


def _presigned_who(**override: str) -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    """A presigned query string (POST with an empty form body), some parameters replaced."""
    def build() -> tuple[str, bytes, dict[str, str]]:
        from botocore.auth import SigV4QueryAuth

        aws = AWSRequest(method="POST", url="http://127.0.0.1:8000/sts?" + urlencode(WHO))
        SigV4QueryAuth(USER, "sts", "us-east-1", expires=300).add_auth(aws)
        query = aws.url.split("?", 1)[1]
        for name, raw in override.items():
            query = "&".join(f"{name}={raw}" if p.startswith(name + "=") else p
                             for p in query.split("&"))
        return query, b"", {}
    return build


def _header_date(value: str) -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    def build() -> tuple[str, bytes, dict[str, str]]:
        headers, body = signed(USER, "/sts", WHO)
        return "", body, {**headers, "X-Amz-Date": value}
    return build


def _plain(body: bytes) -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    return lambda: ("", body, {})


PARITY: list[Any] = [
    pytest.param(_signed_who(), 200, None, id="signed GetCallerIdentity"),
    pytest.param(_presigned_who(), 200, None, id="presigned GetCallerIdentity"),
    pytest.param(_signed_action({"Action": "GetSessionToken",
                                 "SerialNumber": "arn:aws:iam::111122223333:mfa/none",
                                 "TokenCode": "123456"}), 403, "AccessDenied",
                 id="GetSessionToken with an unknown MFA device"),
    pytest.param(_signed_action({"Action": "GetSessionToken", "TokenCode": "123456"}), 403,
                 "AccessDenied", id="GetSessionToken with a TokenCode alone"),
    pytest.param(_plain(b"Action=Frobnicate&Version=2011-06-15"), 400, "InvalidAction",
                 id="unknown action"),
    pytest.param(_plain(b"Version=2011-06-15"), 400, "MissingAction", id="no action"),
    pytest.param(_plain(b"Action=GetCallerIdentity&Version=2011-06-15&x=\xff"), 400,
                 "MalformedQueryString", id="body not UTF-8"),
    pytest.param(_plain(b"Action=GetCallerIdentity&Version=2011-06-15"), 403,
                 "MissingAuthenticationToken", id="unsigned"),
    pytest.param(_presigned_who(**{"X-Amz-Date": "20261399T999999Z"}), 400,
                 "IncompleteSignature", id="presigned date of no real day"),
    pytest.param(_presigned_who(**{"X-Amz-Expires": "%C2%B2"}), 400, "IncompleteSignature",
                 id="presigned expiry a superscript two"),
    pytest.param(_header_date("20261399T999999Z"), 400, "IncompleteSignature",
                 id="header date of no real day"),
    pytest.param(_signed_who("eu-west-1"), 403, "SignatureDoesNotMatch",
                 id="scope for another region"),
]

_VARY = {"date", "content-length", "x-amzn-requestid"}


def _normalized(r: TestResponse) -> tuple[int, str, dict[str, str]]:
    rid = r.headers.get("x-amzn-RequestId", "")
    body = r.get_data(as_text=True).replace(rid, "RID") if rid else r.get_data(as_text=True)
    return r.status_code, body, {k.lower(): v for k, v in r.headers.items()
                                 if k.lower() not in _VARY}


@pytest.mark.parametrize(("build", "status", "expected"), PARITY)
def test_fast_path_and_flask_route_answer_alike(
        web: WebApp, build: Callable[[], tuple[str, bytes, dict[str, str]]], status: int,
        expected: str | None) -> None:
    """Status, headers and AWS XML body are the same through both paths."""
    answers = []
    for _, client in web.both():
        query, body, headers = build()
        path = "/sts" + ("?" + query if query else "")
        r = post(client, path, body, headers)
        assert r.status_code == status, r.get_data(as_text=True)
        assert aws_code(r) == expected
        assert r.headers["x-amzn-RequestId"]
        answers.append(_normalized(r))
    fast, flask = answers
    assert fast[0] == flask[0] and fast[2] == flask[2]
    if status != 200:  # the same error document (a success carries fresh values)
        assert fast[1] == flask[1]


# -- /sts/decide: authenticate first, then bound the body ----------------------------------

def _probe(creds: Credentials = USER) -> dict[str, Any]:
    aws = AWSRequest(method="GET", url="http://storage.example.org/bucket/key")
    SigV4Auth(creds, "s3", "us-east-1").add_auth(aws)
    headers = dict(aws.headers.items()) | {"Host": "storage.example.org"}
    return {"request": {"method": "GET", "path": "/bucket/key", "query": "",
                        "headers": headers, "body_b64": ""},
            "action": "s3:GetObject", "resource": "arn:aws:s3:::bucket/key"}


def _decide(client: Client, body: bytes, auth: tuple[str, str] | None = SERVICE_AUTH
            ) -> TestResponse:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ":".join(auth).encode()).decode()
    return client.post("/sts/decide", data=body, headers=headers,
                       base_url="http://127.0.0.1:8000")


def _nested(depth: int) -> bytes:
    """A decision document whose ``context`` value nests ``depth`` levels in all."""
    doc = json.dumps(_probe() | {"context": {"k": "PLACEHOLDER"}})
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return doc.replace('"PLACEHOLDER"', inner).encode()


DEEP = b"[" * 100_000


@pytest.mark.parametrize(("body", "auth", "status", "error"), [
    pytest.param(DEEP, None, 400, "ValidationError",
                 id="100,000 brackets, no credentials: refused before parsing"),
    pytest.param(DEEP, ("demo-service", "wrong"), 401, "invalid_client",
                 id="100,000 brackets, wrong secret: the client is refused first"),
    pytest.param(DEEP, SERVICE_AUTH, 400, "ValidationError",
                 id="100,000 brackets from an authenticated client"),
    pytest.param(b'{"client_id": "demo-service", "client_secret": "x", "context": '
                 + b"[" * 50_000 + b"]" * 50_000 + b"}", None, 400, "ValidationError",
                 id="credentials in a body nested 50,000 deep"),
    pytest.param(_nested(MAX_JSON_DEPTH + 1), SERVICE_AUTH, 400, "ValidationError",
                 id="one level deeper than the bound"),
])
def test_decide_bounds_nesting_and_authenticates_first(
        web: WebApp, body: bytes, auth: tuple[str, str] | None, status: int,
        error: str) -> None:
    """Deep JSON is refused in the endpoint's own shape before the recursive parser sees it
    (it was a ``RecursionError`` 500); a client with a header is authenticated first."""
    r = _decide(web.flask, body, auth)
    assert r.status_code == status, r.get_data(as_text=True)
    doc = r.json
    assert isinstance(doc, dict)
    if status == 401:
        assert doc["error"] == error and "decision" not in doc
    else:
        assert doc["decision"] == "Deny" and doc["error"]["code"] == error
        assert "nested deeper" in doc["error"]["message"]


def test_decide_at_the_depth_bound_is_answered(web: WebApp) -> None:
    r = _decide(web.flask, _nested(MAX_JSON_DEPTH))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json is not None and r.json["principal"] == USER_KEY_ARN


def test_decide_brackets_inside_strings_do_not_count(web: WebApp) -> None:
    tricky = '\\"[' + "[" * 5000 + '\\\\'
    body = json.dumps(_probe() | {"context": {"k": tricky}}).encode()
    r = _decide(web.flask, body)
    assert r.status_code == 200, r.get_data(as_text=True)


def test_decide_body_over_the_limit_is_413_in_the_endpoint_shape(web: WebApp) -> None:
    limit = web.comps.config.web.max_form_bytes
    body = json.dumps(_probe() | {"context": {"k": "x" * limit}}).encode()
    r = _decide(web.flask, body)
    assert r.status_code == 413
    assert r.json is not None and r.json["error"]["code"] == "RequestEntityTooLarge"
    assert r.json["decision"] == "Deny"
    unauthenticated = _decide(web.flask, body, ("demo-service", "wrong"))
    assert unauthenticated.status_code == 401  # the header is checked before the size


USER_KEY_ARN = "arn:aws:iam::111122223333:user/ops"


@pytest.mark.parametrize(("text", "ok"), [
    pytest.param('{"a": "]]]]"}', True, id="closing brackets in a string"),
    pytest.param('{"a": "\\"[[[["}', True, id="escaped quote then brackets in a string"),
    pytest.param('{"a": "\\\\", "b": [[1]]}', True, id="escaped backslash ends the string"),
    pytest.param("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), False,
                 id="arrays one deeper than the bound"),
    pytest.param('{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1), False,
                 id="objects one deeper than the bound"),
    pytest.param('"\\\\"' + "[" * 100, False, id="brackets after a string that ended"),
])
def test_parse_bounded_json(text: str, ok: bool) -> None:
    if ok:
        assert parse_bounded_json(text.encode()) == json.loads(text)
    else:
        with pytest.raises(ValueError, match="nested deeper"):
            parse_bounded_json(text.encode())
