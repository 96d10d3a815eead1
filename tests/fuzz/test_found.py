"""Regression tests for what the fuzz suite found (each fixed where it lives)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from tests.fuzz.gen import BASIC
from tests.fuzz.known import ASSERTION_TYPE
from tests.fuzz.model import FuzzRequest
from tests.fuzz.shapes import ROUTE_SHAPES, problems
from tests.fuzz.target import Target, target
from tests.fuzz.values import Ctx

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def app_target() -> Target:
    return target()


@pytest.mark.parametrize(("method", "path"), [
    pytest.param("GET", "/oauth2/token", id="get-token"),
    pytest.param("GET", "/oauth2/introspect", id="get-introspect"),
    pytest.param("PUT", "/oauth2/revoke", id="put-revoke"),
    pytest.param("GET", "/oauth2/device_authorization", id="get-device-authorization"),
    pytest.param("DELETE", "/oauth2/userinfo", id="delete-userinfo"),
    pytest.param("PUT", "/sts", id="put-sts"),
    pytest.param("GET", "/iam", id="get-iam"),
    pytest.param("GET", "/sts/decide", id="get-decide"),
    pytest.param("GET", "/cloudtrail", id="get-cloudtrail"),
])
def test_disallowed_method_answers_in_the_protocol_shape(app_target: Target, method: str,
                                                         path: str) -> None:
    """A 405 on a machine endpoint is the endpoint's own error (OAuth JSON, AWS XML, the
    decision JSON), with the Allow header, not the HTML error page."""
    resp = app_target.send(FuzzRequest(path, method, path), "wsgi")
    assert resp.status_code == 405
    assert resp.headers.get("Allow")
    assert problems(ROUTE_SHAPES[path], method, resp) == []


@pytest.mark.parametrize(("path", "ctype"), [
    # the token endpoint takes form bodies only (RFC 6749 §3.2): a JSON body is refused as
    # such before its size matters, so the oversized body there is a form
    ("/oauth2/token", "application/x-www-form-urlencoded"),
    ("/sts", "application/json"),
    ("/sts/decide", "application/json"),
])
def test_body_over_the_limit_answers_in_the_protocol_shape(app_target: Target, path: str,
                                                          ctype: str) -> None:
    """A body over ``web.max_form_bytes`` on a machine endpoint is a 413 in the endpoint's
    own error shape."""
    body = b"x" * (app_target.comps.config.web.max_form_bytes + 1)
    req = FuzzRequest(path, "POST", path, body=body, content_type=ctype)
    resp = app_target.send(req, "wsgi")
    assert resp.status_code == 413
    assert problems(ROUTE_SHAPES[path], "POST", resp) == []


@pytest.mark.parametrize("path", ["/logout", "/saml/slo"])
def test_post_without_csrf_token_is_an_html_page(app_target: Target, path: str) -> None:
    """The CSRF refusal is served as text/html (it was the page's HTML as text/plain)."""
    resp = app_target.send(FuzzRequest(path, "POST", path, body=b"a=b", content_type=FORM),
                           "wsgi")
    assert resp.status_code == 400
    assert resp.mimetype == "text/html"


def _crit_null(token: str) -> str:
    """``token`` under a JOSE header naming the same key, with ``"crit": null``."""
    header = {**json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")), "crit": None}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{head}.{token.split('.')[1]}.c2ln"


def _crit_cases(ctx: Ctx) -> dict[str, tuple[FuzzRequest, int]]:
    at, idt = _crit_null(ctx.access_token), _crit_null(ctx.id_token)
    return {
        "userinfo-bearer": (FuzzRequest("/oauth2/userinfo", "GET", "/oauth2/userinfo",
                                        headers={"Authorization": f"Bearer {at}"}), 401),
        "introspect-token": (FuzzRequest(
            "/oauth2/introspect", "POST", "/oauth2/introspect", content_type=FORM,
            body=urlencode({"token": at}).encode(),
            headers={"Authorization": BASIC["demo-web"]}), 200),
        "token-client-assertion": (FuzzRequest(
            "/oauth2/token", "POST", "/oauth2/token", content_type=FORM,
            body=urlencode({"grant_type": "client_credentials",
                            "client_assertion_type": ASSERTION_TYPE,
                            "client_assertion": idt}).encode()), 401),
        "sts-web-identity-token": (FuzzRequest("/sts", "POST", "/sts", content_type=FORM,
                                               body=urlencode({
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
            "RoleArn": "arn:aws:iam::111122223333:role/ReadOnly", "RoleSessionName": "fuzz",
            "WebIdentityToken": idt}).encode()), 400),
    }


@pytest.mark.parametrize("case", ["userinfo-bearer", "introspect-token",
                                  "token-client-assertion", "sts-web-identity-token"])
def test_token_header_with_crit_not_a_list_is_refused(app_target: Target, case: str) -> None:
    """RFC 7515 §4.1.11: ``crit`` is a non-empty array of names.  A token whose header names
    the IdP's (public) key with ``"crit": null`` made the JOSE library raise a TypeError:
    a 500 wherever a token is verified.  Now each endpoint refuses it in its own shape
    (introspection: ``active: false``)."""
    req, status = _crit_cases(app_target.ctx)[case]
    for via in app_target.paths(req.rule):
        resp = app_target.send(req, via)
        assert resp.status_code == status, (via, resp.get_data()[:300])
        assert problems(ROUTE_SHAPES[req.rule], req.method, resp) == []
        if case == "introspect-token":
            assert resp.get_json() == {"active": False}
