"""Set operators for multivalued context keys.

Page (IAM User Guide): reference_policies_condition-single-vs-multi-valued-context-keys.html
("ForAllValues", "ForAnyValue", the empty-set and missing-key behaviour, and the condition
policy examples with ``aws:TagKeys`` and ``aws:RequestTag``).
"""

from __future__ import annotations

from typing import Any

from tests.iam.corpus import Case, allow, case, deny, doc

MULTI = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html"
EXAMPLES = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html"


def tag_case(cid: str, expect: str, condition: dict[str, Any], tag_keys: Any,
             effect: str = "Allow", source: str = MULTI) -> Case:
    ctx = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    if effect == "Allow":
        policies = [doc(allow("ec2:CreateTags", "*", Condition=condition))]
    else:
        policies = [doc(allow("ec2:CreateTags", "*"), deny("ec2:CreateTags", "*",
                                                           Condition=condition))]
    return case(cid, expect, source=source, action="ec2:CreateTags", resource="*", context=ctx,
                identity=policies)


ALL_EQ = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
ANY_EQ = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}

CASES: list[Case] = [
    tag_case("for-all-values-subset", "Allowed", ALL_EQ, ["environment"]),
    tag_case("for-all-values-equal-set", "Allowed", ALL_EQ, ["environment", "cost-center"]),
    tag_case("for-all-values-extra-value", "ImplicitlyDenied", ALL_EQ, ["environment", "owner"]),
    tag_case("for-all-values-missing-key-true", "Allowed", ALL_EQ, None),
    tag_case("for-all-values-empty-set-true", "Allowed", ALL_EQ, []),
    tag_case("for-all-values-with-null-guard-missing-key", "ImplicitlyDenied",
             {**ALL_EQ, "Null": {"aws:TagKeys": "false"}}, None, source=EXAMPLES),
    tag_case("for-all-values-with-null-guard-subset", "Allowed",
             {**ALL_EQ, "Null": {"aws:TagKeys": "false"}}, ["cost-center"], source=EXAMPLES),
    tag_case("for-all-values-case-sensitive", "ImplicitlyDenied", ALL_EQ, ["Environment"]),
    tag_case("for-all-values-string-like", "Allowed",
             {"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}}, ["CreatedBy", "CreatedAt"]),
    tag_case("for-all-values-string-like-one-miss", "ImplicitlyDenied",
             {"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}}, ["CreatedBy", "Owner"]),
    tag_case("for-all-values-ignore-case", "Allowed",
             {"ForAllValues:StringEqualsIgnoreCase": {"aws:TagKeys": ["environment"]}},
             ["Environment", "ENVIRONMENT"]),
    tag_case("for-any-value-overlap", "Allowed", ANY_EQ, ["environment", "owner"]),
    tag_case("for-any-value-no-overlap", "ImplicitlyDenied", ANY_EQ, ["owner", "project"]),
    tag_case("for-any-value-missing-key-false", "ImplicitlyDenied", ANY_EQ, None),
    tag_case("for-any-value-empty-set-false", "ImplicitlyDenied", ANY_EQ, []),
    tag_case("for-any-value-single-value-context", "Allowed", ANY_EQ, "environment"),
    tag_case("for-any-value-string-not-equals-one-outside", "Allowed",
             {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["environment"]}},
             ["environment", "owner"]),
    tag_case("for-any-value-string-not-equals-all-inside", "ImplicitlyDenied",
             {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["environment"]}},
             ["environment"]),
    tag_case("for-all-values-string-not-equals-none-listed", "Allowed",
             {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret", "internal"]}},
             ["environment", "owner"]),
    tag_case("for-all-values-string-not-equals-one-listed", "ImplicitlyDenied",
             {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret", "internal"]}},
             ["environment", "secret"]),
    tag_case("deny-for-any-value-forbidden-tag", "ExplicitlyDenied",
             {"ForAnyValue:StringEquals": {"aws:TagKeys": ["secret"]}}, ["owner", "secret"],
             effect="Deny", source=EXAMPLES),
    tag_case("deny-for-any-value-forbidden-tag-absent", "Allowed",
             {"ForAnyValue:StringEquals": {"aws:TagKeys": ["secret"]}}, ["owner"],
             effect="Deny", source=EXAMPLES),
    tag_case("deny-for-all-values-allow-list-violated", "ExplicitlyDenied",
             {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["environment", "owner"]}},
             ["environment", "project"], effect="Deny", source=EXAMPLES),
    tag_case("deny-for-all-values-missing-key-not-denied", "Allowed",
             {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["environment", "owner"]}},
             None, effect="Deny", source=EXAMPLES),
    case("request-tag-and-tag-keys-together", "Allowed", source=EXAMPLES,
         action="ec2:CreateTags", resource="*",
         context={"aws:RequestTag/environment": "prod", "aws:TagKeys": ["environment"]},
         identity=[doc(allow("ec2:CreateTags", "*", Condition={
             "StringEquals": {"aws:RequestTag/environment": ["prod", "dev"]},
             "ForAllValues:StringEquals": {"aws:TagKeys": ["environment"]}}))]),
    case("for-any-value-arn-like-called-via", "Allowed", source=MULTI,
         action="kms:Decrypt", resource="*",
         context={"aws:CalledVia": ["athena.amazonaws.com", "s3.amazonaws.com"]},
         identity=[doc(allow("kms:Decrypt", "*", Condition={
             "ForAnyValue:StringEquals": {"aws:CalledVia": "s3.amazonaws.com"}}))]),
]
