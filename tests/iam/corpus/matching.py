"""Action and Resource matching.

Pages (IAM User Guide):
- reference_policies_elements_action.html, reference_policies_elements_notaction.html
- reference_policies_elements_resource.html, reference_policies_elements_notresource.html
"""

from __future__ import annotations

from tests.iam.corpus import ACCT, BUCKET, OBJECT, Case, allow, case, deny, doc

ACTION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html"
NOTACTION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html"
RESOURCE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html"
NOTRESOURCE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html"

INSTANCE = f"arn:aws:ec2:us-east-1:{ACCT}:instance/i-0123456789abcdef0"
STREAM = f"arn:aws:logs:us-east-1:{ACCT}:log-group:app:log-stream:web-1"


def act(cid: str, expect: str, pattern: object, action: str, **kw: object) -> Case:
    return case(cid, expect, source=ACTION, action=action, resource="*",
                identity=[doc(allow(pattern, "*"))], **kw)  # type: ignore[arg-type]


def res(cid: str, expect: str, pattern: object, resource: str, action: str = "s3:GetObject",
        source: str = RESOURCE) -> Case:
    return case(cid, expect, source=source, action=action, resource=resource,
                identity=[doc(allow("*", pattern))])


CASES: list[Case] = [
    act("action-exact", "Allowed", "s3:GetObject", "s3:GetObject"),
    act("action-case-insensitive-request", "Allowed", "s3:GetObject", "S3:getobject"),
    act("action-case-insensitive-policy", "Allowed", "S3:GETOBJECT", "s3:GetObject"),
    act("action-prefix-wildcard", "Allowed", "s3:Get*", "s3:GetObjectAcl"),
    act("action-prefix-wildcard-miss", "ImplicitlyDenied", "s3:Get*", "s3:PutObject"),
    act("action-question-mark", "Allowed", "s3:GetObjec?", "s3:GetObject"),
    act("action-question-mark-one-char-only", "ImplicitlyDenied", "s3:GetObj?", "s3:GetObject"),
    act("action-star-everything", "Allowed", "*", "dynamodb:Query"),
    act("action-service-star", "Allowed", "s3:*", "s3:ListBucket"),
    act("action-service-star-not-other-service", "ImplicitlyDenied", "s3:*",
        "s3express:CreateSession"),
    act("action-infix-wildcard", "Allowed", "ec2:*Instances", "ec2:DescribeInstances"),
    act("action-wildcard-service-part", "Allowed", "*:Describe*", "rds:DescribeDBInstances"),
    act("action-list-is-or", "Allowed", ["sqs:SendMessage", "sns:Publish"], "sns:Publish"),
    act("action-list-no-member", "ImplicitlyDenied", ["sqs:SendMessage", "sns:Publish"],
        "sns:Subscribe"),
    case("notaction-allow-everything-but-iam", "Allowed", source=NOTACTION, action="s3:GetObject",
         resource="*", identity=[doc(allow(None, "*", NotAction="iam:*"))]),
    case("notaction-allow-excludes-iam", "ImplicitlyDenied", source=NOTACTION,
         action="iam:CreateUser", resource="*",
         identity=[doc(allow(None, "*", NotAction="iam:*"))]),
    case("notaction-deny-all-but-listed", "ExplicitlyDenied", source=NOTACTION,
         action="ec2:RunInstances", resource="*",
         identity=[doc(allow("*", "*"), deny(None, "*", NotAction=["iam:*", "sts:*"]))]),
    case("notaction-deny-listed-passes", "Allowed", source=NOTACTION,
         action="sts:GetSessionToken",
         resource="*",
         identity=[doc(allow("*", "*"), deny(None, "*", NotAction=["iam:*", "sts:*"]))]),
    case("notaction-case-insensitive", "ImplicitlyDenied", source=NOTACTION,
         action="IAM:ListUsers", resource="*", identity=[doc(allow(None, "*", NotAction="iam:*"))]),
    case("notaction-with-mfa-condition", "ExplicitlyDenied", source=NOTACTION,
         action="ec2:StopInstances", resource="*", context={},
         identity=[doc(allow("*", "*"), deny(None, "*", NotAction="iam:*", Condition={
             "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}))]),
    res("resource-exact-arn", "Allowed", OBJECT, OBJECT),
    res("resource-star", "Allowed", "*", OBJECT),
    res("resource-star-matches-non-arn", "Allowed", "*", "*"),
    res("resource-bucket-objects", "Allowed", f"{BUCKET}/*", f"{BUCKET}/a/b/c.txt"),
    res("resource-bucket-objects-not-bucket", "ImplicitlyDenied", f"{BUCKET}/*", BUCKET),
    res("resource-case-sensitive", "ImplicitlyDenied", "arn:aws:s3:::AMZN-S3-DEMO-BUCKET/*",
        OBJECT),
    res("resource-question-mark", "Allowed", f"{BUCKET}/report.cs?", OBJECT),
    res("resource-region-wildcard", "Allowed", f"arn:aws:ec2:*:{ACCT}:instance/*", INSTANCE,
        "ec2:StopInstances"),
    res("resource-account-wildcard", "Allowed", "arn:aws:ec2:us-east-1:*:instance/*", INSTANCE,
        "ec2:StopInstances"),
    res("resource-wildcard-does-not-cross-segments", "ImplicitlyDenied",
        "arn:aws:ec2:*:instance/*", INSTANCE, "ec2:StopInstances"),
    res("resource-segment-wildcard-partial", "Allowed", "arn:aws:ec2:us-*:*:instance/i-*",
        INSTANCE, "ec2:StopInstances"),
    res("resource-segment-wildcard-partial-miss", "ImplicitlyDenied",
        "arn:aws:ec2:eu-*:*:instance/*", INSTANCE, "ec2:StopInstances"),
    res("resource-part-wildcard-crosses-colons", "Allowed",
        f"arn:aws:logs:us-east-1:{ACCT}:log-group:app:*", STREAM, "logs:PutLogEvents"),
    res("resource-part-wildcard-other-group", "ImplicitlyDenied",
        f"arn:aws:logs:us-east-1:{ACCT}:log-group:db:*", STREAM, "logs:PutLogEvents"),
    res("resource-all-segments-wildcard", "Allowed", "arn:aws:*:*:*:*", INSTANCE,
        "ec2:StopInstances"),
    res("resource-service-segment-exact", "ImplicitlyDenied", "arn:aws:rds:*:*:*", INSTANCE,
        "ec2:StopInstances"),
    res("resource-iam-role-path-wildcard", "Allowed", f"arn:aws:iam::{ACCT}:role/team/*",
        f"arn:aws:iam::{ACCT}:role/team/Dev", "iam:GetRole"),
    res("resource-list-is-or", "Allowed", ["arn:aws:s3:::other/*", f"{BUCKET}/*"], OBJECT),
    case("notresource-allow-all-but-bucket", "Allowed", source=NOTRESOURCE,
         resource="arn:aws:s3:::other-bucket/x",
         identity=[doc(allow("s3:*", None, NotResource=[BUCKET, f"{BUCKET}/*"]))]),
    case("notresource-allow-excludes-listed", "ImplicitlyDenied", source=NOTRESOURCE,
         identity=[doc(allow("s3:*", None, NotResource=[BUCKET, f"{BUCKET}/*"]))]),
    case("notresource-deny-everything-else", "ExplicitlyDenied", source=NOTRESOURCE,
         resource="arn:aws:s3:::other-bucket/x",
         identity=[doc(allow("s3:*", "*"), deny("s3:*", None,
                                                 NotResource=[BUCKET, f"{BUCKET}/*"]))]),
    case("notresource-deny-listed-passes", "Allowed", source=NOTRESOURCE,
         identity=[doc(allow("s3:*", "*"), deny("s3:*", None,
                                                 NotResource=[BUCKET, f"{BUCKET}/*"]))]),
]
