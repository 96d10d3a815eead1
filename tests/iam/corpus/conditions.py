"""Condition operators, one family after the other.

Page (IAM User Guide): reference_policies_elements_condition_operators.html (String, Numeric,
Date, Boolean, Binary, IP address, ARN, ...IfExists, Null) and
reference_policies_condition-logic-multiple-context-keys-or-values.html (AND/OR logic).
"""

from __future__ import annotations

from typing import Any

from tests.iam.corpus import ACCT, Case, allow, case, deny, doc

OPS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"
LOGIC = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html"


def cond(cid: str, expect: str, condition: dict[str, Any], context: dict[str, Any],
         source: str = OPS) -> Case:
    """An Allow guarded by ``condition``."""
    return case(cid, expect, source=source, context=context,
                identity=[doc(allow("s3:GetObject", "*", Condition=condition))])


def guard(cid: str, expect: str, condition: dict[str, Any], context: dict[str, Any],
          source: str = OPS) -> Case:
    """Allow everything, Deny when ``condition`` holds."""
    return case(cid, expect, source=source, context=context,
                identity=[doc(allow("*", "*"), deny("*", "*", Condition=condition))])


SE = {"StringEquals": {"aws:PrincipalTag/team": "blue"}}
NOW = "2025-06-01T12:00:00Z"
CIDR = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8:1234::/48"]}}

CASES: list[Case] = [
    # String
    cond("string-equals-match", "Allowed", SE, {"aws:PrincipalTag/team": "blue"}),
    cond("string-equals-case-sensitive-value", "ImplicitlyDenied", SE,
         {"aws:PrincipalTag/team": "Blue"}),
    cond("string-equals-key-case-insensitive", "Allowed",
         {"StringEquals": {"AWS:PRINCIPALTAG/TEAM": "blue"}}, {"aws:principaltag/team": "blue"}),
    cond("string-equals-no-wildcards", "ImplicitlyDenied",
         {"StringEquals": {"aws:PrincipalTag/team": "bl*"}}, {"aws:PrincipalTag/team": "blue"}),
    cond("string-equals-missing-key-false", "ImplicitlyDenied", SE, {}),
    cond("string-equals-ignore-case", "Allowed",
         {"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}},
         {"aws:PrincipalTag/team": "blue"}),
    cond("string-not-equals-match", "Allowed",
         {"StringNotEquals": {"aws:PrincipalTag/team": "red"}}, {"aws:PrincipalTag/team": "blue"}),
    cond("string-not-equals-equal", "ImplicitlyDenied",
         {"StringNotEquals": {"aws:PrincipalTag/team": "blue"}}, {"aws:PrincipalTag/team": "blue"}),
    cond("string-not-equals-ignore-case", "ImplicitlyDenied",
         {"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}},
         {"aws:PrincipalTag/team": "blue"}),
    guard("string-not-equals-missing-key-true", "ExplicitlyDenied",
          {"StringNotEquals": {"aws:PrincipalTag/team": "blue"}}, {}),
    cond("string-like-star", "Allowed", {"StringLike": {"s3:prefix": "home/alice/*"}},
         {"s3:prefix": "home/alice/docs/x"}),
    cond("string-like-question-mark", "Allowed", {"StringLike": {"aws:PrincipalTag/team": "bl?e"}},
         {"aws:PrincipalTag/team": "blue"}),
    cond("string-like-case-sensitive", "ImplicitlyDenied",
         {"StringLike": {"s3:prefix": "Home/*"}}, {"s3:prefix": "home/x"}),
    cond("string-not-like", "Allowed", {"StringNotLike": {"s3:prefix": "private/*"}},
         {"s3:prefix": "public/x"}),
    cond("string-not-like-matching", "ImplicitlyDenied",
         {"StringNotLike": {"s3:prefix": "private/*"}}, {"s3:prefix": "private/x"}),
    cond("string-values-or", "Allowed",
         {"StringEquals": {"aws:PrincipalTag/team": ["red", "blue"]}},
         {"aws:PrincipalTag/team": "blue"}, source=LOGIC),
    cond("string-not-equals-values-nor", "ImplicitlyDenied",
         {"StringNotEquals": {"aws:PrincipalTag/team": ["red", "blue"]}},
         {"aws:PrincipalTag/team": "blue"}, source=LOGIC),
    cond("keys-and", "ImplicitlyDenied",
         {"StringEquals": {"aws:PrincipalTag/team": "blue", "aws:PrincipalTag/env": "prod"}},
         {"aws:PrincipalTag/team": "blue", "aws:PrincipalTag/env": "dev"}, source=LOGIC),
    cond("keys-and-all-true", "Allowed",
         {"StringEquals": {"aws:PrincipalTag/team": "blue", "aws:PrincipalTag/env": "prod"}},
         {"aws:PrincipalTag/team": "blue", "aws:PrincipalTag/env": "prod"}, source=LOGIC),
    cond("operators-and", "ImplicitlyDenied",
         {"StringEquals": {"aws:PrincipalTag/team": "blue"},
          "Bool": {"aws:SecureTransport": "true"}},
         {"aws:PrincipalTag/team": "blue", "aws:SecureTransport": "false"}, source=LOGIC),
    # ...IfExists
    cond("if-exists-missing-key-true", "Allowed",
         {"StringEqualsIfExists": {"ec2:InstanceType": ["t3.micro", "t3.small"]}}, {}),
    cond("if-exists-present-mismatch", "ImplicitlyDenied",
         {"StringEqualsIfExists": {"ec2:InstanceType": ["t3.micro", "t3.small"]}},
         {"ec2:InstanceType": "m5.24xlarge"}),
    cond("if-exists-present-match", "Allowed",
         {"StringEqualsIfExists": {"ec2:InstanceType": ["t3.micro", "t3.small"]}},
         {"ec2:InstanceType": "t3.micro"}),
    guard("bool-if-exists-mfa-long-term-credentials-denied", "ExplicitlyDenied",
          {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, {}),
    guard("bool-if-exists-mfa-present-not-denied", "Allowed",
          {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
          {"aws:MultiFactorAuthPresent": True}),
    guard("bool-mfa-missing-key-not-denied", "Allowed",
          {"Bool": {"aws:MultiFactorAuthPresent": "false"}}, {}),
    # Numeric
    cond("numeric-less-than", "Allowed", {"NumericLessThanEquals": {"s3:max-keys": "10"}},
         {"s3:max-keys": "10"}),
    cond("numeric-less-than-exceeded", "ImplicitlyDenied",
         {"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": 11}),
    cond("numeric-strict-less-than", "ImplicitlyDenied", {"NumericLessThan": {"s3:max-keys": "10"}},
         {"s3:max-keys": "10"}),
    cond("numeric-equals-decimal", "Allowed", {"NumericEquals": {"s3:max-keys": "10"}},
         {"s3:max-keys": "10.0"}),
    cond("numeric-not-equals", "Allowed", {"NumericNotEquals": {"s3:max-keys": "10"}},
         {"s3:max-keys": "5"}),
    cond("numeric-greater-than", "Allowed", {"NumericGreaterThan": {"aws:MultiFactorAuthAge": "0"}},
         {"aws:MultiFactorAuthAge": "30"}),
    cond("numeric-greater-than-equals-miss", "ImplicitlyDenied",
         {"NumericGreaterThanEquals": {"s3:max-keys": "100"}}, {"s3:max-keys": "99"}),
    guard("numeric-mfa-age-too-old-denied", "ExplicitlyDenied",
          {"NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"}},
          {"aws:MultiFactorAuthAge": "7200"}),
    cond("numeric-not-a-number-no-match", "ImplicitlyDenied",
         {"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}),
    # Date
    cond("date-less-than", "Allowed", {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
         {"aws:CurrentTime": NOW}),
    cond("date-less-than-expired", "ImplicitlyDenied",
         {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"aws:CurrentTime": NOW}),
    cond("date-greater-than", "Allowed",
         {"DateGreaterThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}},
         {"aws:CurrentTime": NOW}),
    cond("date-window", "Allowed",
         {"DateGreaterThan": {"aws:CurrentTime": "2025-06-01T00:00:00Z"},
          "DateLessThan": {"aws:CurrentTime": "2025-06-30T23:59:59Z"}}, {"aws:CurrentTime": NOW}),
    cond("date-epoch-policy-value", "Allowed", {"DateGreaterThan": {"aws:EpochTime": "1735689600"}},
         {"aws:EpochTime": "1748779200"}),
    cond("date-iso-against-epoch-context", "Allowed",
         {"DateLessThan": {"aws:CurrentTime": "2025-06-02T00:00:00Z"}},
         {"aws:CurrentTime": "1748779200"}),
    cond("date-equals", "Allowed", {"DateEquals": {"aws:CurrentTime": "2025-06-01T12:00:00+00:00"}},
         {"aws:CurrentTime": NOW}),
    cond("date-not-equals", "ImplicitlyDenied", {"DateNotEquals": {"aws:CurrentTime": NOW}},
         {"aws:CurrentTime": NOW}),
    guard("date-token-issued-before-revocation-denied", "ExplicitlyDenied",
          {"DateLessThan": {"aws:TokenIssueTime": "2025-06-01T00:00:00Z"}},
          {"aws:TokenIssueTime": "2025-05-31T08:00:00Z"}),
    guard("date-token-issued-after-revocation-passes", "Allowed",
          {"DateLessThan": {"aws:TokenIssueTime": "2025-06-01T00:00:00Z"}},
          {"aws:TokenIssueTime": "2025-06-01T08:00:00Z"}),
    cond("date-date-only-value", "Allowed",
         {"DateGreaterThanEquals": {"aws:CurrentTime": "2025-06-01"}},
         {"aws:CurrentTime": NOW}),
    # Bool
    cond("bool-secure-transport", "Allowed", {"Bool": {"aws:SecureTransport": "true"}},
         {"aws:SecureTransport": "true"}),
    cond("bool-case-insensitive", "Allowed", {"Bool": {"aws:SecureTransport": "True"}},
         {"aws:SecureTransport": "TRUE"}),
    cond("bool-json-boolean-value", "Allowed", {"Bool": {"aws:SecureTransport": True}},
         {"aws:SecureTransport": True}),
    guard("bool-deny-insecure-transport", "ExplicitlyDenied",
          {"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}),
    # Binary
    cond("binary-equals", "Allowed", {"BinaryEquals": {"s3:x-amz-meta-key": "QmluYXJ5VmFsdWU="}},
         {"s3:x-amz-meta-key": "QmluYXJ5VmFsdWU="}),
    cond("binary-equals-different", "ImplicitlyDenied",
         {"BinaryEquals": {"s3:x-amz-meta-key": "QmluYXJ5VmFsdWU="}},
         {"s3:x-amz-meta-key": "T3RoZXI="}),
    # IP address
    cond("ip-v4-in-cidr", "Allowed", CIDR, {"aws:SourceIp": "203.0.113.77"}),
    cond("ip-v4-outside-cidr", "ImplicitlyDenied", CIDR, {"aws:SourceIp": "198.51.100.7"}),
    cond("ip-v6-in-cidr", "Allowed", CIDR, {"aws:SourceIp": "2001:db8:1234:ffff::1"}),
    cond("ip-v6-outside-cidr", "ImplicitlyDenied", CIDR, {"aws:SourceIp": "2001:db8:9999::1"}),
    cond("ip-single-address-without-prefix", "Allowed",
         {"IpAddress": {"aws:SourceIp": "192.0.2.9"}},
         {"aws:SourceIp": "192.0.2.9"}),
    cond("ip-not-an-address-no-match", "ImplicitlyDenied", CIDR, {"aws:SourceIp": "localhost"}),
    guard("not-ip-address-deny-outside-corporate", "ExplicitlyDenied",
          {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}},
          {"aws:SourceIp": "198.51.100.1"}),
    guard("not-ip-address-inside-corporate-passes", "Allowed",
          {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}},
          {"aws:SourceIp": "192.0.2.10"}),
    # ARN
    cond("arn-equals", "Allowed",
         {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCT}:topic1"}},
         {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCT}:topic1"}),
    cond("arn-like-wildcards-per-segment", "Allowed",
         {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:topic*"}},
         {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCT}:topic1"}),
    cond("arn-equals-allows-wildcards", "Allowed",
         {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:*:{ACCT}:*"}},
         {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCT}:topic1"}),
    cond("arn-like-wildcard-not-across-segments", "ImplicitlyDenied",
         {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:topic1"}},
         {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCT}:topic1"}),
    cond("arn-like-case-sensitive", "ImplicitlyDenied",
         {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:Topic1"}},
         {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCT}:topic1"}),
    cond("arn-not-equals", "Allowed",
         {"ArnNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/Admin"}},
         {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/Dev"}),
    cond("arn-not-like", "ImplicitlyDenied",
         {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/*"}},
         {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/Dev"}),
    # Null
    cond("null-true-key-absent", "Allowed", {"Null": {"aws:TokenIssueTime": "true"}}, {}),
    cond("null-true-key-present", "ImplicitlyDenied", {"Null": {"aws:TokenIssueTime": "true"}},
         {"aws:TokenIssueTime": NOW}),
    cond("null-false-key-present", "Allowed", {"Null": {"aws:TokenIssueTime": "false"}},
         {"aws:TokenIssueTime": NOW}),
    guard("null-deny-untagged-request", "ExplicitlyDenied",
          {"Null": {"aws:RequestTag/CostCenter": "true"}}, {"aws:RequestTag/Owner": "x"}),
]
