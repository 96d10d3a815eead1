"""The fuzz suite's checks catch what they are for (a check that cannot fail is a defect)."""

from __future__ import annotations

import pytest
from werkzeug.test import TestResponse

from tests.fuzz.shapes import AWS, BROWSER, DECIDE, OAUTH, problems

AWS_ERROR = (b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
             b"<Message>m</Message></Error></ErrorResponse>")


def _resp(status: int, body: bytes, ctype: str, **headers: str) -> TestResponse:
    return TestResponse([body], status, {"Content-Type": ctype, **headers}, request=None)


@pytest.mark.parametrize(("shape", "resp"), [
    pytest.param(OAUTH, _resp(400, b'{"error":"invalid_request"}', "application/json"),
                 id="oauth-error-json"),
    pytest.param(AWS, _resp(400, AWS_ERROR, "text/xml"), id="aws-error-xml"),
    pytest.param(DECIDE, _resp(400, b'{"decision":"Deny","error":{"code":"x"}}',
                                "application/json"), id="decide-error-json"),
    pytest.param(BROWSER, _resp(400, b"<!doctype html><p>refused", "text/html"),
                 id="browser-error-page"),
    pytest.param(BROWSER, _resp(302, b"", "text/html", Location="/login"),
                 id="browser-redirect"),
])
def test_protocol_answers_pass(shape: str, resp: TestResponse) -> None:
    assert problems(shape, "POST", resp) == []


@pytest.mark.parametrize(("shape", "resp", "found"), [
    pytest.param(OAUTH, _resp(500, b'{"error":"server_error"}', "application/json"),
                 "status 500", id="any-5xx"),
    pytest.param(OAUTH, _resp(405, b"<!doctype html>", "text/html"), "wrong oauth shape",
                 id="html-page-on-oauth-endpoint"),
    pytest.param(OAUTH, _resp(400, b'{"detail":"x"}', "application/json"), "no OAuth",
                 id="json-without-error-member"),
    pytest.param(AWS, _resp(400, b"<Error><Code>x</Code></Error>", "text/xml"),
                 "no <ErrorResponse>", id="aws-without-error-response"),
    pytest.param(AWS, _resp(413, b'{"error":"x"}', "application/json"), "wrong aws shape",
                 id="json-on-aws-endpoint"),
    pytest.param(DECIDE, _resp(401, b"<!doctype html>", "text/html"), "wrong decide shape",
                 id="html-on-decision-endpoint"),
    pytest.param(BROWSER, _resp(400, b"<p>refused", "text/plain"), "not an HTML page",
                 id="html-served-as-text-plain"),
    pytest.param(BROWSER, _resp(302, b"", "text/html"), "redirect without Location",
                 id="redirect-without-location"),
    pytest.param(BROWSER, _resp(400, b'Traceback (most recent call last):\n  File "/x.py"',
                                "text/html"), "traceback", id="traceback-text"),
    pytest.param(BROWSER, _resp(400, b"<p>KeyError: 'x'", "text/html"), "KeyError",
                 id="python-exception-name"),
    pytest.param(OAUTH, _resp(400, b'{"error":"x","d":"/srv/idp/oidc/core.py"}',
                              "application/json"), "/idp/oidc/core.py", id="source-path"),
])
def test_wrong_answers_are_reported(shape: str, resp: TestResponse, found: str) -> None:
    assert any(found in p for p in problems(shape, "POST", resp)), problems(shape, "POST", resp)
