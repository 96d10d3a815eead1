"""One exact reproduction of each bug class of ``known.BUG_CLASSES`` (found by an outside
review: each answered 5xx, or the fast path and Flask disagreed).  Each request goes through
the property test's checks, so "fixed" means the protocol's own error shape, not only a
status below 500.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlencode

import pytest

from tests.fuzz.gen import BASIC
from tests.fuzz.known import ASSERTION_TYPE, known_bug
from tests.fuzz.model import FuzzRequest
from tests.fuzz.shapes import ROUTE_SHAPES, problems
from tests.fuzz.target import Target, target

FORM = "application/x-www-form-urlencoded"
_REQUEST_ID = re.compile(rb"<RequestId>[^<]*</RequestId>|\"requestId\": ?\"[^\"]*\"")
PRESIGN = ("Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=ASIAFUZZFUZZFUZZFUZZ%2F{day}%2Fus-east-1%2Fsts%2Faws4_request"
           "&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature=" + "0" * 64)


def _assertion(payload: object) -> str:
    def seg(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{seg({'alg': 'RS256', 'typ': 'JWT', 'kid': 'k'})}.{seg(payload)}.c2ln"


def _form(rule: str, body: str, content_type: str = FORM) -> FuzzRequest:
    return FuzzRequest(rule, "POST", rule, body=body.encode(), content_type=content_type)


def _multipart(rule: str, fields: dict[str, str]) -> FuzzRequest:
    parts = "".join(f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    for k, v in fields.items())
    return FuzzRequest(rule, "POST", rule, body=(parts + "--b--\r\n").encode(),
                       content_type="multipart/form-data; boundary=b")


AUTHORIZE = ("client_id=demo-cli&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback"
             "&response_type=code&scope=openid&state=s&code_challenge_method=S256"
             "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&max_age=%C2%B2")
LIST_ASSERTION = {"client_assertion_type": ASSERTION_TYPE,
                  "client_assertion": _assertion(["demo-web"])}
STRING_ASSERTION = {"client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": _assertion("demo-web")}


def _urlencode(fields: dict[str, str]) -> str:
    return urlencode(fields)


CASES = [
    pytest.param(FuzzRequest("/oauth2/authorize", "GET", "/oauth2/authorize", AUTHORIZE),
                 id="authorize-max-age-superscript-two"),
    pytest.param(FuzzRequest("/oauth2/authorize", "GET", "/oauth2/authorize", AUTHORIZE,
                             signed_in=True), id="authorize-max-age-superscript-two-signed-in"),
    pytest.param(_form("/oauth2/token", "grant_type=client_credentials&"
                       + _urlencode(LIST_ASSERTION)), id="token-assertion-list-payload-fast"),
    pytest.param(_multipart("/oauth2/token", {"grant_type": "client_credentials",
                                              **STRING_ASSERTION}),
                 id="token-assertion-string-payload-flask"),
    pytest.param(_form("/oauth2/introspect", "token=x&" + _urlencode(LIST_ASSERTION)),
                 id="introspect-assertion-list-payload-fast"),
    pytest.param(_multipart("/oauth2/introspect", {"token": "x", **STRING_ASSERTION}),
                 id="introspect-assertion-string-payload-flask"),
    pytest.param(FuzzRequest("/sts", "GET", "/sts", PRESIGN.format(
        day="20261399", date="20261399T999999Z", expires="300")),
        id="sts-presigned-impossible-date"),
    pytest.param(FuzzRequest("/sts", "GET", "/sts", PRESIGN.format(
        day="20261129", date="20261129T120000Z", expires="%C2%B2")),
        id="sts-presigned-expires-superscript-two"),
    pytest.param(FuzzRequest("/sts/decide", "POST", "/sts/decide", body=b"[" * 100_000,
                             content_type="application/json"),
                 id="decide-json-nested-100000-deep"),
    *[pytest.param(_form(path, "token=x&" + "&".join(f"f{i}={i}" for i in range(500))),
                   id=f"{path.rsplit('/', 1)[1]}-500-form-fields-both-paths-agree")
      for path in ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke")],
    pytest.param(FuzzRequest("/sts/decide", "POST", "/sts/decide", body=b"[" * 100_000,
                             content_type="application/json",
                             headers={"Authorization": BASIC["demo-web"]}),
                 id="decide-json-nested-100000-deep-authenticated"),
]


@pytest.fixture(scope="module")
def app_target() -> Target:
    return target()


@pytest.mark.parametrize("req", CASES)
def test_reproduction_belongs_to_its_bug_class(req: FuzzRequest) -> None:
    """Each reproduction is in its class (so the summary's class counts mean something)."""
    assert known_bug(req) is not None


@pytest.mark.parametrize("req", CASES)
def test_review_bug_class_gets_the_protocol_error(app_target: Target, req: FuzzRequest) -> None:
    """A 4xx in the route's protocol shape, the same through every path."""
    found, answers = [], set()
    for via in app_target.paths(req.rule):
        resp = app_target.send(req, via)
        # the request ID differs per answer; everything else must be the same
        answers.add((resp.status_code, _REQUEST_ID.sub(b"", resp.get_data())))
        found += [f"[{via}] {p}" for p in problems(ROUTE_SHAPES[req.rule], req.method, resp)]
    assert found == []
    assert len(answers) == 1, "the fast path and Flask answer differently"
