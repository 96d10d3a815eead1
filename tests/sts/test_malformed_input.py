"""Client input the STS and IAM Query APIs read as numbers, indices or names: ASCII-strict and
bounded, answered with AWS's own 4xx error (never ``InternalFailure``/``ServiceFailure``).

``str.isdigit`` admits ``²`` (which ``int`` refuses: a 500 before) and ``int`` and ``\\d``
admit ``٣`` and other scripts' digits (accepted before, where AWS refuses them)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from botocore.credentials import Credentials

from idp.iam import demo_model
from idp.iam.query import handle_iam_query
from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, Core
from tests.sts.test_sigv4 import session_creds
from tests.sts.test_webidentity import params as web_params
from tests.sts.test_webidentity import token as web_token
from tests.sts.util import code

CHAIN = {"Action": "AssumeRole", "RoleArn": A.role("ReadOnly"), "RoleSessionName": "next"}


@pytest.mark.parametrize(("extra", "expected"), [
    pytest.param({"DurationSeconds": "\u0663\u0666\u0660\u0660"}, "ValidationError",
                 id="DurationSeconds in Arabic-Indic digits"),
    pytest.param({"DurationSeconds": "\u00b2"}, "ValidationError",
                 id="DurationSeconds a superscript two"),
    pytest.param({"DurationSeconds": "9" * 40}, "ValidationError",
                 id="DurationSeconds of 40 digits"),
    pytest.param({"RoleSessionName": "caf\u00e9"}, "ValidationError",
                 id="RoleSessionName with a non-ASCII letter (AWS's \\w is ASCII)"),
    pytest.param({"Tags.member.1.Key": "k", "Tags.member.1.Value": "v",
                  "TransitiveTagKeys.member.\u00b2": "k"}, None,
                 id="TransitiveTagKeys index a superscript two"),
    pytest.param({"Tags.member.\u00b2.Key": "k", "Tags.member.\u00b2.Value": "v"},
                 "InvalidParameterValue", id="Tags index a superscript two"),
    pytest.param({"PolicyArns.member.\u0661.arn": "arn:aws:iam::aws:policy/X"},
                 "InvalidParameterValue", id="PolicyArns index an Arabic-Indic one"),
    pytest.param({"Policy": "[" * 2048}, "MalformedPolicyDocument",
                 id="session policy of 2,048 nested arrays"),
])
def test_query_numbers_and_names_are_ascii(custom: Core, extra: dict[str, str],
                                           expected: str | None) -> None:
    """``None``: a list item with a key that is no index is not an item (ignored), as the
    other unknown parameters are."""
    r = custom.call(CHAIN | extra, session_creds(custom))
    if expected is None:
        assert r.status == 200, r.body
    else:
        assert (r.status, code(r)) == (400, expected), r.body


def _nested_segment(depth: int) -> str:
    return base64.urlsafe_b64encode(b"[" * depth).rstrip(b"=").decode()


@pytest.mark.parametrize("segment", [0, 1], ids=["header", "payload"])
def test_web_identity_token_nested_too_deep(core: Core, segment: int) -> None:
    """A JWT segment of 10,000 nested arrays (within the 20,000-character token limit)."""
    parts = web_token(core).split(".")
    parts[segment] = _nested_segment(10_000)
    r = core.call(web_params(".".join(parts)))
    assert (r.status, code(r)) == (400, "InvalidIdentityToken"), r.body


def _iam(params: dict[str, str]) -> tuple[int, str]:
    return handle_iam_query({"Version": "2010-05-08", **params}, demo_model(ISSUER))


POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})


@pytest.mark.parametrize(("params", "expected"), [
    pytest.param({"Action": "SimulateCustomPolicy", "PolicyInputList.member.\u00b2": POLICY,
                  "ActionNames.member.1": "s3:GetObject"}, "MissingParameter",
                 id="PolicyInputList index a superscript two"),
    pytest.param({"Action": "SimulateCustomPolicy", "PolicyInputList.member.1": POLICY,
                  "ActionNames.member.1": "s3:GetObject",
                  "ContextEntries.member.\u00b2.ContextKeyName": "aws:username",
                  "ContextEntries.member.\u00b2.ContextKeyValues.member.1": "x"}, None,
                 id="ContextEntries index a superscript two"),
    pytest.param({"Action": "ListRoles", "MaxItems": "\u0663"}, "InvalidParameterValue",
                 id="MaxItems in Arabic-Indic digits"),
    pytest.param({"Action": "ListRoles", "MaxItems": "9" * 40}, "InvalidParameterValue",
                 id="MaxItems of 40 digits"),
    pytest.param({"Action": "ListRoles",
                  "Marker": base64.urlsafe_b64encode("\u0661".encode()).decode()},
                 "InvalidParameterValue", id="Marker of an Arabic-Indic one"),
    pytest.param({"Action": "ListRoles", "Marker": "\u00b2"}, "InvalidParameterValue",
                 id="Marker not base64"),
    pytest.param({"Action": "SimulateCustomPolicy",
                  "PolicyInputList.member.1": "[" * 100_000,
                  "ActionNames.member.1": "s3:GetObject"}, "MalformedPolicyDocument",
                 id="policy nested 100,000 deep"),
])
def test_iam_query_numbers_are_ascii(params: dict[str, str], expected: str | None) -> None:
    status, body = _iam(params)
    if expected is None:
        assert status == 200, body
        return
    assert status == 400, body
    assert re.search(r"<Code>(\w+)</Code>", body)[1] == expected  # type: ignore[index]


def test_unicode_digits_signed_creds_control(custom: Core) -> None:
    """The chained request of the table, as sent, is accepted (each refusal is real)."""
    good: Credentials = session_creds(custom)
    assert custom.call(CHAIN, good).status == 200
