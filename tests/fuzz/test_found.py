"""Regression tests for what the fuzz suite found (each fixed where it lives)."""

from __future__ import annotations

import pytest

from tests.fuzz.gen import BASIC
from tests.fuzz.model import FuzzRequest
from tests.fuzz.shapes import ROUTE_SHAPES, problems
from tests.fuzz.target import Target, target

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
])
def test_disallowed_method_answers_in_the_protocol_shape(app_target: Target, method: str,
                                                         path: str) -> None:
    """A 405 on a machine endpoint is the endpoint's own error (OAuth JSON, AWS XML, the
    decision JSON), with the Allow header, not the HTML error page."""
    resp = app_target.send(FuzzRequest(path, method, path), "wsgi")
    assert resp.status_code == 405
    assert resp.headers.get("Allow")
    assert problems(ROUTE_SHAPES[path], method, resp) == []


@pytest.mark.parametrize("path", ["/oauth2/token", "/sts", "/sts/decide"])
def test_body_over_the_limit_answers_in_the_protocol_shape(app_target: Target,
                                                          path: str) -> None:
    """Flask's 413 (a multipart or JSON body over ``web.max_form_bytes``) on a machine
    endpoint is the endpoint's own error."""
    body = b"x" * (app_target.comps.config.web.max_form_bytes + 1)
    req = FuzzRequest(path, "POST", path, body=body, content_type="application/json")
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


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"])
def test_form_with_many_fields_same_answer_on_both_paths(app_target: Target, path: str) -> None:
    """Over 100 form fields: the fast path refused them as a malformed body (400) while
    Flask answered the request (401 for a bad client); both now parse the whole form,
    bounded by the body size limit."""
    fields = "&".join(f"f{i}={i}" for i in range(500))
    req = FuzzRequest(path, "POST", path, body=f"token=x&{fields}".encode(),
                      content_type=FORM, headers={"Authorization": BASIC["demo-web"][:-4]})
    fast, flask = app_target.send(req, "wsgi"), app_target.send(req, "flask")
    assert (fast.status_code, fast.get_json()) == (flask.status_code, flask.get_json())
    assert fast.status_code == 401
