"""The signed actions: AssumeRole (role chaining), GetSessionToken, GetAccessKeyInfo,
DecodeAuthorizationMessage, the decision endpoint, and the Query protocol's own errors."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from botocore.credentials import Credentials
from lxml import etree

from idp.audit import RequestInfo
from idp.sts import DecisionQuery, build_request, decide
from tests.sts import assertions as A
from tests.sts.conftest import READ_ONLY_ARN, USER_KEY, Core, signed_request
from tests.sts.test_sigv4 import session_creds, user_creds
from tests.sts.util import NS, code, creds, field


def chain(core: Core, c: Credentials, role: str = "ReadOnly", **extra: str) -> object:
    return core.call({"Action": "AssumeRole", "RoleArn": A.role(role),
                      "RoleSessionName": "chained", **extra}, c)


def test_role_chaining_capped_at_one_hour(custom: Core) -> None:
    dev = session_creds(custom)
    r = chain(custom, dev)
    assert field(r, "AssumedRoleUser/Arn") == \
        "arn:aws:sts::111122223333:assumed-role/ReadOnly/chained"
    s = custom.svc.credentials.peek(creds(r)[0])
    assert s is not None and s.chained and s.expires - s.issued == 3600
    too_long = chain(custom, dev, DurationSeconds="7200")
    assert code(too_long) == "ValidationError" and "role chaining" in too_long.body


def test_transitive_tags_carried_and_fixed(custom: Core) -> None:
    dev = session_creds(custom)
    first = chain(custom, dev, role="Admin", **{
        "Tags.member.1.Key": "project", "Tags.member.1.Value": "x",
        "TransitiveTagKeys.member.1": "project",
        "Tags.member.2.Key": "scratch", "Tags.member.2.Value": "y"})
    c1 = Credentials(*creds(first))
    second = chain(custom, c1, role="Developer")
    s = custom.svc.credentials.peek(creds(second)[0])
    assert s is not None and dict(s.tags) == {"project": "x"}
    assert s.transitive_tag_keys == ("project",)
    clash = chain(custom, c1, role="Developer",
                  **{"Tags.member.1.Key": "Project", "Tags.member.1.Value": "z"})
    assert code(clash) == "InvalidParameterValue"


def test_assume_role_trust_denied_for_user(custom: Core) -> None:
    r = chain(custom, user_creds())
    assert code(r) == "AccessDenied" and r.status == 403
    assert custom.stored_sessions() == 0


def test_assume_role_needs_identity_permission(custom: Core) -> None:
    """The trust policy names the account: the caller's own policies must allow it too."""
    ro = session_creds(custom, "ReadOnly")
    before = custom.stored_sessions()
    r = chain(custom, ro, role="Developer")
    assert code(r) == "AccessDenied"
    assert custom.stored_sessions() == before


@pytest.mark.parametrize(("extra", "expected"), [
    pytest.param({"RoleSessionName": "bad name!"}, "ValidationError", id="RoleSessionName pattern"),
    pytest.param({"RoleSessionName": "x"}, "ValidationError", id="RoleSessionName too short"),
    pytest.param({"DurationSeconds": "100"}, "ValidationError", id="DurationSeconds below 900"),
    pytest.param({"DurationSeconds": "abc"}, "ValidationError", id="DurationSeconds not a number"),
    pytest.param({"RoleArn": "arn:aws:iam::111122223333:role/Nope"}, "AccessDenied",
                 id="no such role"),
    pytest.param({f"Tags.member.{i}.Key": f"k{i}" for i in range(1, 52)}, "ValidationError",
                 id="more than 50 tags"),
    pytest.param({"Tags.member.1.Key": "aws:x", "Tags.member.1.Value": "v"},
                 "InvalidParameterValue", id="tag key with the aws prefix"),
    pytest.param({"Tags.member.1.Key": "k", "Tags.member.1.Value": "x" * 257},
                 "ValidationError", id="tag value too long"),
    pytest.param({"Tags.member.1.Key": "k", "Tags.member.1.Value": "v",
                  "TransitiveTagKeys.member.1": "other"}, "InvalidParameterValue",
                 id="transitive key that is not a tag"),
    pytest.param({"Policy": "{" + " " * 2100 + "}"}, "ValidationError", id="policy too long"),
    pytest.param({f"PolicyArns.member.{i}.arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"
                  for i in range(1, 12)}, "ValidationError", id="more than 10 policy ARNs"),
    pytest.param({"SourceIdentity": "bad identity!"}, "ValidationError",
                 id="SourceIdentity pattern"),
])
def test_assume_role_parameters(custom: Core, extra: dict[str, str], expected: str) -> None:
    dev = session_creds(custom)
    before = custom.stored_sessions()
    params = {"Action": "AssumeRole", "RoleArn": A.role("ReadOnly"), "RoleSessionName": "ok",
              **extra}
    r = custom.call(params, dev)
    assert code(r) == expected, r.body
    assert custom.stored_sessions() == before


def test_get_session_token(core: Core) -> None:
    r = core.call({"Action": "GetSessionToken", "DurationSeconds": "900"}, user_creds())
    c = Credentials(*creds(r))
    assert c.access_key.startswith("ASIA") and len(c.access_key) == 20 and len(c.secret_key) == 40
    who = core.call({"Action": "GetCallerIdentity"}, c)
    assert field(who, "Arn") == USER_KEY.principal_arn
    again = core.call({"Action": "GetSessionToken"}, c)
    assert code(again) == "AccessDenied"


def test_get_access_key_info(core: Core) -> None:
    dev = session_creds(core)
    r = core.call({"Action": "GetAccessKeyInfo", "AccessKeyId": dev.access_key}, dev)
    assert field(r, "Account") == "111122223333"
    r = core.call({"Action": "GetAccessKeyInfo", "AccessKeyId": USER_KEY.access_key_id}, dev)
    assert field(r, "Account") == "111122223333"


@pytest.mark.parametrize(("params", "expected", "status"), [
    pytest.param({"Action": "Frobnicate"}, "InvalidAction", 400, id="unknown action"),
    pytest.param({"Action": ""}, "MissingAction", 400, id="missing action"),
    pytest.param({"Action": "GetCallerIdentity", "Version": "2010-05-08"}, "InvalidAction",
                 400, id="wrong version"),
    pytest.param({"Action": "AssumeRoleWithSAML"}, "MissingParameter", 400,
                 id="missing required parameter"),
])
def test_protocol_errors(core: Core, params: dict[str, str], expected: str,
                         status: int) -> None:
    r = core.call(params)
    assert (code(r), r.status) == (expected, status)
    root = etree.fromstring(r.body.encode())
    assert root.tag == "{{{}}}ErrorResponse".format(NS["s"])
    assert root.findtext("s:Error/s:Type", namespaces=NS) == "Sender"
    assert root.findtext("s:RequestId", namespaces=NS)


def _decision(core: Core, c: Credentials, action: str, resource: str) -> dict[str, object]:
    req = signed_request({"Version": "2011-06-15", "Action": "Anything"}, c, service="s3",
                         path="/bucket/key")
    q = DecisionQuery(req.method, req.path, req.query, dict(req.headers), req.body, action,
                      resource)
    return decide(core.svc, q, RequestInfo())


def test_session_policy_narrows_admin(custom: Core) -> None:
    import datetime as dt

    spec = A.Spec("http://127.0.0.1:8000", now=dt.datetime.fromtimestamp(custom.clock.t, dt.UTC),
                  roles=[f"{A.role('Admin')},{A.PROVIDER}"])
    saml = A.encode(A.signed_response(spec, custom.keys.active("RS256")))
    base = {"Action": "AssumeRoleWithSAML", "RoleArn": A.role("Admin"),
            "PrincipalArn": A.PROVIDER, "SAMLAssertion": saml}
    admin = Credentials(*creds(custom.call(base)))
    spec2 = A.Spec("http://127.0.0.1:8000",
                   now=dt.datetime.fromtimestamp(custom.clock.t, dt.UTC),
                   roles=[f"{A.role('Admin')},{A.PROVIDER}"])
    saml2 = A.encode(A.signed_response(spec2, custom.keys.active("RS256")))
    narrowed = Credentials(*creds(custom.call({**base, "SAMLAssertion": saml2,
                                               "PolicyArns.member.1.arn": READ_ONLY_ARN})))
    put = ("s3:PutObject", "arn:aws:s3:::bucket/key")
    assert _decision(custom, admin, *put)["decision"] == "Allow"
    denied = _decision(custom, narrowed, *put)
    assert denied["decision"] == "Deny" and denied["encodedAuthorizationMessage"]
    assert _decision(custom, narrowed, "s3:GetObject", put[1])["decision"] == "Allow"
    # the encoded message is readable by a principal allowed sts:DecodeAuthorizationMessage
    r = custom.call({"Action": "DecodeAuthorizationMessage",
                     "EncodedMessage": str(denied["encodedAuthorizationMessage"])}, admin)
    decoded = json.loads(field(r, "DecodedMessage") or "{}")
    assert decoded["allowed"] is False and decoded["context"]["action"] == "s3:PutObject"
    r = custom.call({"Action": "DecodeAuthorizationMessage",
                     "EncodedMessage": str(denied["encodedAuthorizationMessage"])}, narrowed)
    assert code(r) == "AccessDenied"
    r = custom.call({"Action": "DecodeAuthorizationMessage", "EncodedMessage": "garbage"}, admin)
    assert code(r) == "InvalidAuthorizationMessageException"
    assert any(e["eventName"] == "Decide" and e.get("errorCode") == "AccessDenied"
               for e in custom.sink.records)


def test_decision_denies_bad_signature(custom: Core) -> None:
    dev = session_creds(custom)
    out = _decision(custom, Credentials(dev.access_key, "y" * 40, dev.token), "s3:GetObject",
                    "arn:aws:s3:::b/k")
    assert out["decision"] == "Deny" and out["reason"] == "SignatureDoesNotMatch"


def test_get_request_with_query_string(core: Core) -> None:
    req = build_request("GET", "/sts", urlencode({"Action": "Nope", "Version": "2011-06-15"}),
                        {}, b"")
    assert code(core.svc.handle(req)) == "InvalidAction"


def test_decision_for_s3_style_signature(custom: Core) -> None:
    """botocore's S3 signer: path signed as sent, ``UNSIGNED-PAYLOAD`` allowed for s3."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    dev = session_creds(custom)
    req = AWSRequest(method="GET", url="http://s3.example.org/bucket/my%20key.txt",
                     headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(dev, "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items()) | {"Host": "s3.example.org"}
    q = DecisionQuery("GET", "/bucket/my%20key.txt", "", headers, b"", "s3:GetObject",
                      "arn:aws:s3:::bucket/my key.txt")
    assert decide(custom.svc, q, RequestInfo())["decision"] == "Allow"
    q = DecisionQuery("GET", "/bucket/other.txt", "", headers, b"", "s3:GetObject",
                      "arn:aws:s3:::bucket/other.txt")
    assert decide(custom.svc, q, RequestInfo())["reason"] == "SignatureDoesNotMatch"


def test_source_identity_set_once_and_carried(custom: Core) -> None:
    dev = session_creds(custom)
    first = chain(custom, dev, role="Admin", SourceIdentity="alice")
    assert field(first, "SourceIdentity") == "alice"
    c1 = Credentials(*creds(first))
    second = chain(custom, c1, role="Developer")
    assert field(second, "SourceIdentity") == "alice"
    changed = chain(custom, c1, role="Developer", SourceIdentity="mallory")
    assert code(changed) == "AccessDenied"


@pytest.mark.parametrize(("external_id", "allowed"), [
    pytest.param(None, False, id="ExternalId missing"),
    pytest.param("vendor-41", False, id="ExternalId wrong"),
    pytest.param("vendor-42", True, id="ExternalId right"),
])
def test_external_id_condition(custom: Core, external_id: str | None, allowed: bool) -> None:
    dev = session_creds(custom)
    extra = {"ExternalId": external_id} if external_id else {}
    r = chain(custom, dev, role="Vendor", **extra)
    assert (r.status == 200) is allowed, r.body  # type: ignore[attr-defined]
