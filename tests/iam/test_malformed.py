"""Invalid policy documents are rejected with AWS's ``MalformedPolicyDocument`` messages.

Wording as AWS returns it from ``CreatePolicy``/``PutRolePolicy``/``CreateRole`` (IAM API
Reference, ``MalformedPolicyDocument``); grammar from the IAM User Guide, "Grammar of the IAM
JSON policy language" and "IAM JSON policy element reference".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp.iam import MalformedPolicyDocument, parse_policy
from idp.iam.validation import PolicyKind

V = "2012-10-17"
SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
NO_PRINCIPAL = "Policy document should not specify a principal."
SAML = "arn:aws:iam::111122223333:saml-provider/demo-idp"


def one(**st: Any) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                         "Resource": "*", **st}]}


def without(key: str, **st: Any) -> dict[str, Any]:
    d = one(**st)
    del d["Statement"][0][key]
    return d


def trust(**st: Any) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"Federated": SAML},
                                         "Action": "sts:AssumeRoleWithSAML", **st}]}


CASES = [
    # syntax
    pytest.param("identity", "{not json", SYNTAX, id="not-json"),
    pytest.param("identity", "[]", SYNTAX, id="top-level-not-object"),
    pytest.param("identity", {"Version": V}, SYNTAX, id="missing-statement"),
    pytest.param("identity", {"Version": V, "Statement": []}, SYNTAX, id="empty-statement-list"),
    pytest.param("identity", {"Version": V, "Statement": "Allow"}, SYNTAX,
                 id="statement-is-string"),
    pytest.param("identity", {"Version": V, "Statement": ["x"]}, SYNTAX,
                 id="statement-item-not-object"),
    pytest.param("identity", {**one(), "Extra": 1}, SYNTAX, id="unknown-top-level-element"),
    pytest.param("identity", one(Actions="s3:*"), SYNTAX, id="unknown-statement-element"),
    pytest.param("identity", {"Version": 2012, "Statement": one()["Statement"]}, SYNTAX,
                 id="version-not-string"),
    pytest.param("identity", {**one(), "Id": 5}, SYNTAX, id="id-not-string"),
    pytest.param("identity", without("Effect"), "Missing required field Effect",
                 id="missing-effect"),
    pytest.param("identity", one(Effect="Permit"), SYNTAX, id="effect-unknown"),
    pytest.param("identity", one(Effect=True), SYNTAX, id="effect-not-string"),
    pytest.param("identity", one(Resource=None), SYNTAX, id="resource-null"),
    pytest.param("identity", one(Action={"s3": "Get"}), SYNTAX, id="action-object"),
    pytest.param("identity", one(Action=["s3:GetObject", 5]), SYNTAX, id="action-list-number"),
    pytest.param("identity", one(NotAction="s3:*"), SYNTAX, id="action-and-notaction"),
    pytest.param("identity", one(NotResource="*"), SYNTAX, id="resource-and-notresource"),
    pytest.param("resource", one(Principal="*", NotPrincipal="*"), SYNTAX,
                 id="principal-and-notprincipal"),
    pytest.param("identity", one(Sid=7), SYNTAX, id="sid-not-string"),
    pytest.param("identity", one(Condition="aws:SecureTransport"), SYNTAX,
                 id="condition-not-object"),
    pytest.param("identity", one(Condition={"StringEquals": "x"}), SYNTAX,
                 id="condition-block-not-object"),
    pytest.param("identity", one(Condition={"StringEqualz": {"aws:username": "x"}}), SYNTAX,
                 id="condition-unknown-operator"),
    pytest.param("identity", one(Condition={"ForSomeValues:StringEquals": {"aws:TagKeys": "x"}}),
                 SYNTAX, id="condition-unknown-set-operator"),
    pytest.param("identity", one(Condition={"NullIfExists": {"aws:TagKeys": "true"}}), SYNTAX,
                 id="condition-null-if-exists"),
    pytest.param("identity", one(Condition={"StringEquals": {"aws:username": {"a": 1}}}),
                 SYNTAX, id="condition-value-object"),
    pytest.param("identity", one(Condition={"StringEquals": {"username": "bob"}}),
                 "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                 id="condition-key-without-vendor"),
    # version
    pytest.param("identity", {"Version": "2012-10-18", "Statement": one()["Statement"]},
                 "Invalid Version", id="version-unknown"),
    # legacy parsing
    pytest.param("identity", one(Effect="allow"), LEGACY, id="effect-wrong-case"),
    pytest.param("identity", one(Resource="arn:aws:s3::bucket"), LEGACY,
                 id="resource-double-colon-too-few-segments"),
    pytest.param("identity", one(Condition={"DateGreaterThan": {"aws:CurrentTime": "yesterday"}}),
                 LEGACY, id="condition-date-not-a-date"),
    pytest.param("identity", one(Condition={"DateLessThan": {"aws:CurrentTime": "2020-13-01"}}),
                 LEGACY, id="condition-date-month-13"),
    # statement ids
    pytest.param("identity", {"Version": V, "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Sid": "A", "Effect": "Deny", "Action": "iam:*", "Resource": "*"}]},
        "Statement IDs (SID) in a single policy must be unique.", id="duplicate-sid"),
    pytest.param("identity", one(Sid="read objects"),
                 "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the "
                 "regular expression [0-9A-Za-z]*", id="sid-with-space-in-iam-policy"),
    # actions
    pytest.param("identity", without("Action"), "Policy statement must contain actions.",
                 id="missing-action"),
    pytest.param("identity", one(Action=[]), "Policy statement must contain actions.",
                 id="empty-action-list"),
    pytest.param("identity", one(Action="GetObject"),
                 "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                 id="action-without-vendor"),
    pytest.param("identity", one(Action="s3:Get:Object"),
                 "Actions/Condition can contain only one colon.", id="action-two-colons"),
    pytest.param("identity", one(Action="s3 bucket:GetObject"), "Vendor s3 bucket is not valid",
                 id="action-vendor-with-space"),
    # resources
    pytest.param("identity", without("Resource"), "Policy statement must contain resources.",
                 id="missing-resource"),
    pytest.param("identity", one(Resource=[]), "Policy statement must contain resources.",
                 id="empty-resource-list"),
    pytest.param("identity", one(Resource="my-bucket"),
                 'Resource my-bucket must be in ARN format or "*".', id="resource-not-arn"),
    pytest.param("identity", one(Resource="arn:amazon:s3:::b"),
                 'Partition "amazon" is not valid for resource "arn:amazon:s3:*:*:b".',
                 id="resource-bad-partition"),
    pytest.param("identity", one(Resource="arn:aws"),
                 "Resource vendor must be fully qualified and cannot contain regexes.",
                 id="resource-no-vendor"),
    pytest.param("identity", one(Resource="arn:aws:iam:us-east-1:111122223333:role/x"),
                 "IAM resource arn:aws:iam:us-east-1:111122223333:role/x cannot contain region "
                 "information.", id="iam-resource-with-region"),
    pytest.param("identity", one(Resource="arn:aws:s3:us-east-1::bucket"),
                 "Resource arn:aws:s3:us-east-1::bucket can not contain region information.",
                 id="s3-resource-with-region"),
    pytest.param("identity", one(Resource="arn:aws:iam::111122223333:roles/x"),
                 'IAM resource path must either be "*" or start with user/, federated-user/, '
                 "role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, "
                 "saml-provider/, oidc-provider/, report/, access-report/.",
                 id="iam-resource-bad-path"),
    # principals, per policy type
    pytest.param("identity", one(Principal="*"), NO_PRINCIPAL, id="identity-with-principal"),
    pytest.param("boundary", one(NotPrincipal={"AWS": "*"}), NO_PRINCIPAL,
                 id="boundary-with-notprincipal"),
    pytest.param("session", one(Principal={"AWS": "111122223333"}), NO_PRINCIPAL,
                 id="session-policy-with-principal"),
    pytest.param("scp", one(Principal="*"), NO_PRINCIPAL, id="scp-with-principal"),
    pytest.param("resource", one(), "Missing required field Principal",
                 id="resource-policy-without-principal"),
    pytest.param("resource", one(Principal="arn:aws:iam::111122223333:root"),
                 'Invalid principal in policy: "arn:aws:iam::111122223333:root"',
                 id="principal-string-not-star"),
    pytest.param("resource", one(Principal={"IAM": "111122223333"}),
                 'Invalid principal in policy: "IAM":"111122223333"', id="principal-unknown-type"),
    pytest.param("resource", one(Principal={"AWS": "arn:aws:iam::111122223333:user/*"}),
                 'Invalid principal in policy: "AWS":"arn:aws:iam::111122223333:user/*"',
                 id="principal-partial-wildcard"),
    pytest.param("resource", one(Principal={"AWS": "alice"}),
                 'Invalid principal in policy: "AWS":"alice"', id="principal-bare-name"),
    pytest.param("resource", one(Principal={"AWS": "arn:aws:iam::111122223333:group/devs"}),
                 'Invalid principal in policy: "AWS":"arn:aws:iam::111122223333:group/devs"',
                 id="principal-group-not-allowed"),
    pytest.param("resource", one(Principal={"AWS": "11112222333"}),
                 'Invalid principal in policy: "AWS":"11112222333"',
                 id="principal-account-11-digits"),
    pytest.param("resource", one(Principal={"AWS": []}), 'Invalid principal in policy: "AWS":[]',
                 id="principal-empty-list"),
    pytest.param("resource", one(Principal={"Federated": "*"}),
                 'Invalid principal in policy: "Federated":"*"', id="federated-wildcard"),
    pytest.param("resource", one(Principal={}), SYNTAX, id="principal-empty-object"),
    # trust policies
    pytest.param("trust", trust(Resource="*"), "Has prohibited field Resource.",
                 id="trust-with-resource"),
    pytest.param("trust", trust(Action="s3:GetObject"),
                 "Trust Policy statement actions can only be sts:AssumeRole, "
                 "sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
                 id="trust-non-sts-action"),
    pytest.param("trust", {"Version": V, "Statement": [{"Effect": "Allow",
                                                        "Action": "sts:AssumeRole"}]},
                 "Missing required field Principal", id="trust-without-principal"),
]


@pytest.mark.parametrize(("kind", "document", "message"), CASES)
def test_rejected_with_aws_message(kind: PolicyKind, document: Any, message: str) -> None:
    with pytest.raises(MalformedPolicyDocument) as info:
        parse_policy(document, kind)
    assert info.value.description == message
    assert info.value.code == "MalformedPolicyDocument"
    assert info.value.status == 400


@pytest.mark.parametrize(("document", "pointer"), [
    pytest.param(without("Effect"), "Statement[0]", id="pointer-missing-effect"),
    pytest.param(one(Action="GetObject"), "Statement[0].Action", id="pointer-action"),
    pytest.param({"Version": V, "Statement": {"Effect": "Allow", "Action": "s3:*",
                                              "Resource": "x"}},
                 "Statement.Resource", id="pointer-single-statement-object"),
])
def test_error_points_at_the_problem(document: Any, pointer: str) -> None:
    with pytest.raises(MalformedPolicyDocument) as info:
        parse_policy(document, "identity")
    assert info.value.pointer == pointer
    assert info.value.located().startswith(pointer + ": ")


VALID = [
    pytest.param("identity", one(), id="minimal"),
    pytest.param("identity", {"Statement": {"Effect": "Deny", "NotAction": "iam:*",
                                            "NotResource": "arn:aws:s3:::b"}},
                 id="no-version-single-statement"),
    pytest.param("identity", {**one(), "Version": "2008-10-17"}, id="version-2008"),
    pytest.param("identity", one(Condition={"ForAllValues:StringLikeIfExists": {
        "aws:TagKeys": ["a*"]}, "Null": {"aws:TokenIssueTime": True},
        "NumericLessThan": {"s3:max-keys": 10}}), id="set-operator-ifexists-number-bool"),
    pytest.param("resource", one(Sid="Public read", Principal="*"), id="resource-sid-with-space"),
    pytest.param("resource", one(Principal={"AWS": ["111122223333",
                                                    "arn:aws:sts::111122223333:assumed-role/R/s",
                                                    "AROAEXAMPLEEXAMPLE0001"],
                                            "Service": "s3.amazonaws.com",
                                            "CanonicalUser": "7" * 64}), id="principal-forms"),
    pytest.param("trust", trust(Condition={"StringEquals": {"SAML:aud": "urn:amazon:webservices"}}),
                 id="trust-saml"),
    pytest.param("trust", {"Version": V, "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "accounts.google.com"},
        "Action": "sts:AssumeRoleWithWebIdentity"}]}, id="trust-web-identity-host"),
    pytest.param("scp", {"Version": V, "Statement": [{"Effect": "Deny", "NotAction": "iam:*"}]},
                 id="scp-without-resource"),
    pytest.param("identity", json.dumps(one(Resource="arn:aws:s3:::b/${aws:username}/*")),
                 id="json-text-with-variable"),
]


@pytest.mark.parametrize(("kind", "document"), VALID)
def test_valid_documents_accepted(kind: PolicyKind, document: Any) -> None:
    policy = parse_policy(document, kind)
    assert policy.statements
