"""The evaluation rules an independent corpus of AWS cases found wrong, and cases around each.

Pages:
- IAM User Guide, reference_policies_elements_notprincipal.html: ``NotPrincipal`` is an
  exception list; with ``Deny`` the role ARN and, across accounts, the account ARN must be
  listed too ("AWS might validate the account first, then the role, and then the assumed-role
  user"); the AWS Security Blog post "How to restrict Amazon S3 bucket access to a specific IAM
  role" (both the role ARN and the assumed-role ARN must be listed).
- IAM User Guide, access_policies_boundaries.html: a ``Deny`` with ``NotPrincipal`` always
  denies a principal with a permissions boundary; only a grant to the role ARN is limited by the
  boundary and session policy, grants to a user ARN or a role session ARN are not.
- Organizations User Guide, orgs_manage_policies_rcps_evaluation.html: ``RCPFullAWSAccess`` is
  attached to every root, OU and account and cannot be detached; RCPs restrict through
  ``Deny`` only.
- STS API Reference, API_GetCallerIdentity.html: no permission needed, an explicit deny does
  not stop it.
- IAM User Guide, reference_policies_evaluation-logic_policy-eval-basics.html: "IAM role trust
  policies and KMS key policies are exceptions to this logic, because they must explicitly
  allow access for principals"; the AWS Security Blog post "How to use trust policies with IAM
  roles" (a trust policy naming the account delegates to the account's identity policies).
- IAM User Guide, reference_policies_elements_principal.html ("All principals"): ``"*"``
  names every principal, the caller itself included.
"""

from __future__ import annotations

from typing import Any

from tests.iam.corpus import (
    ACCT,
    BUCKET,
    OIDC,
    OTHER,
    OTHER_ROLE,
    OTHER_ROOT,
    OTHER_SESSION,
    ROLE,
    ROOT,
    SAML,
    SESSION,
    USER,
    Case,
    allow,
    case,
    deny,
    doc,
)

NOTPRINCIPAL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"
S3_ROLE_BLOG = "https://aws.amazon.com/blogs/security/how-to-restrict-amazon-s3-bucket-access-to-a-specific-iam-role/"
BOUNDARY = "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html"
RCP_EVAL = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html"
GCI = "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"
BASICS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html"
TRUST_BLOG = "https://aws.amazon.com/blogs/security/how-to-use-trust-policies-with-iam-roles/"
PRINCIPAL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html"
SAML_TRUST = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_saml.html"
OIDC_TRUST = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html"

OTHER_USER = f"arn:aws:iam::{OTHER}:user/dana"
BOB_SESSION = f"arn:aws:sts::{ACCT}:assumed-role/Dev/bob"
TARGET = f"arn:aws:iam::{ACCT}:role/Target"
OBJ = f"{BUCKET}/*"
S3_ALL = doc(allow("s3:*", "*"))
EC2_ONLY = doc(allow("ec2:*", "*"))
ASSUME_TARGET = doc(allow("sts:AssumeRole", TARGET))


def np_deny(*names: str, allow_account: str | None = None) -> dict[str, Any]:
    """A bucket policy denying s3:GetObject to everyone but ``names`` (and, for cross-account
    cases, allowing ``allow_account``, as the resource side must also allow)."""
    stmts = [deny("s3:GetObject", OBJ, NotPrincipal={"AWS": list(names)})]
    if allow_account is not None:
        stmts.insert(0, allow("s3:GetObject", OBJ, Principal={"AWS": allow_account}))
    return doc(*stmts)


def np_allow(*names: str) -> dict[str, Any]:
    return doc(allow("s3:GetObject", OBJ, NotPrincipal={"AWS": list(names)}))


def star(principal: object = "*") -> dict[str, Any]:
    return doc(allow("s3:GetObject", OBJ, Principal=principal))


def trust(principal: object, action: str = "sts:AssumeRole", **kw: Any) -> dict[str, Any]:
    return doc(allow(action, None, Principal=principal, **kw))


def assume(cid: str, expect: str, **kw: Any) -> Case:
    kw.setdefault("action", "sts:AssumeRole")
    kw.setdefault("resource", TARGET)
    kw.setdefault("source", BASICS)
    return case(cid, expect, **kw)


NOT_PRINCIPAL: list[Case] = [
    # -- Deny + NotPrincipal, same account: the principal's own ARNs suffice ------------------
    case("np-deny-same-account-user-listed-not-denied", "Allowed", source=S3_ROLE_BLOG,
         principal=USER, identity=[S3_ALL], resource_policy=np_deny(USER)),
    case("np-deny-same-account-user-and-account-listed-not-denied", "Allowed",
         source=NOTPRINCIPAL, principal=USER, identity=[S3_ALL],
         resource_policy=np_deny(USER, ROOT)),
    case("np-deny-same-account-session-role-account-listed-not-denied", "Allowed",
         source=NOTPRINCIPAL, identity=[S3_ALL], resource_policy=np_deny(SESSION, ROLE, ROOT)),
    case("np-deny-same-account-session-arn-without-role-denied", "ExplicitlyDenied",
         source=S3_ROLE_BLOG, identity=[S3_ALL], resource_policy=np_deny(SESSION),
         blocked=["resource"]),
    case("np-deny-same-account-role-arn-alone-denies-its-session", "ExplicitlyDenied",
         source=S3_ROLE_BLOG, identity=[S3_ALL], resource_policy=np_deny(ROLE),
         blocked=["resource"]),
    case("np-deny-same-account-account-alone-denies-session", "ExplicitlyDenied",
         source=NOTPRINCIPAL, identity=[S3_ALL], resource_policy=np_deny(ROOT),
         blocked=["resource"]),
    case("np-deny-same-account-account-alone-denies-user", "ExplicitlyDenied",
         source=NOTPRINCIPAL, principal=USER, identity=[S3_ALL], resource_policy=np_deny(ACCT)),
    case("np-deny-same-account-other-session-of-listed-role-denied", "ExplicitlyDenied",
         source=NOTPRINCIPAL, principal=BOB_SESSION, identity=[S3_ALL],
         resource_policy=np_deny(SESSION, ROLE, ROOT)),
    case("np-deny-same-account-role-caller-role-listed-not-denied", "Allowed",
         source=NOTPRINCIPAL, principal=ROLE, identity=[S3_ALL], resource_policy=np_deny(ROLE)),
    case("np-deny-same-account-root-caller-listed-not-denied", "Allowed", source=NOTPRINCIPAL,
         principal=ROOT, resource_policy=np_deny(ROOT)),
    case("np-deny-same-account-root-caller-not-listed-denied", "ExplicitlyDenied",
         source=NOTPRINCIPAL, principal=ROOT, resource_policy=np_deny(USER)),
    # -- Deny + NotPrincipal, cross-account: the account ARN must be listed too ----------------
    case("np-deny-cross-account-session-role-account-listed-not-denied", "Allowed",
         source=NOTPRINCIPAL, principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL],
         resource_policy=np_deny(OTHER_SESSION, OTHER_ROLE, OTHER_ROOT, allow_account=OTHER)),
    case("np-deny-cross-account-session-role-without-account-denied", "ExplicitlyDenied",
         source=NOTPRINCIPAL, principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL],
         resource_policy=np_deny(OTHER_SESSION, OTHER_ROLE, allow_account=OTHER)),
    case("np-deny-cross-account-account-alone-denied", "ExplicitlyDenied", source=NOTPRINCIPAL,
         principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL],
         resource_policy=np_deny(OTHER_ROOT, allow_account=OTHER)),
    case("np-deny-cross-account-user-and-account-listed-not-denied", "Allowed",
         source=NOTPRINCIPAL, principal=OTHER_USER, account=ACCT, identity=[S3_ALL],
         resource_policy=np_deny(OTHER_USER, OTHER, allow_account=OTHER)),
    case("np-deny-cross-account-user-without-account-denied", "ExplicitlyDenied",
         source=NOTPRINCIPAL, principal=OTHER_USER, account=ACCT, identity=[S3_ALL],
         resource_policy=np_deny(OTHER_USER, allow_account=OTHER)),
    case("np-deny-anonymous-caller-denied", "ExplicitlyDenied", source=NOTPRINCIPAL,
         principal="*", resource_policy=doc(allow("s3:GetObject", OBJ, Principal="*"),
                                            deny("s3:GetObject", OBJ,
                                                 NotPrincipal={"AWS": [USER, ROOT]}))),
    # -- Allow + NotPrincipal: naming the caller in any form leaves it out ---------------------
    case("np-allow-naming-user-does-not-allow-user", "ImplicitlyDenied", source=NOTPRINCIPAL,
         principal=USER, identity=[], resource_policy=np_allow(USER)),
    case("np-allow-naming-session-does-not-allow-session", "ImplicitlyDenied",
         source=NOTPRINCIPAL, identity=[], resource_policy=np_allow(SESSION)),
    case("np-allow-naming-role-does-not-allow-its-session", "ImplicitlyDenied",
         source=NOTPRINCIPAL, identity=[], resource_policy=np_allow(ROLE)),
    case("np-allow-naming-account-does-not-allow-its-user", "ImplicitlyDenied",
         source=NOTPRINCIPAL, principal=USER, identity=[], resource_policy=np_allow(ROOT)),
    case("np-allow-naming-someone-else-allows-caller", "Allowed", source=NOTPRINCIPAL,
         principal=USER, identity=[], resource_policy=np_allow(f"arn:aws:iam::{ACCT}:user/x")),
    case("np-allow-naming-someone-else-allows-anonymous", "Allowed", source=NOTPRINCIPAL,
         principal="*", resource_policy=np_allow(USER)),
    case("np-allow-cross-account-naming-account-not-allowed", "ImplicitlyDenied",
         source=NOTPRINCIPAL, principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL],
         resource_policy=np_allow(OTHER_ROOT), blocked=["resource"]),
    case("np-allow-cross-account-caller-not-named-allowed", "Allowed", source=NOTPRINCIPAL,
         principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL],
         resource_policy=np_allow(USER)),
    # -- permissions boundary: Deny + NotPrincipal always denies ------------------------------
    case("np-deny-boundary-user-fully-listed-still-denied", "ExplicitlyDenied",
         source=BOUNDARY, principal=USER, identity=[S3_ALL], boundaries=[S3_ALL],
         resource_policy=np_deny(USER, ROOT)),
    case("np-deny-boundary-role-caller-listed-still-denied", "ExplicitlyDenied",
         source=BOUNDARY, principal=ROLE, identity=[S3_ALL], boundaries=[S3_ALL],
         resource_policy=np_deny(ROLE, ROOT)),
    case("np-allow-with-boundary-is-not-the-deny-quirk", "Allowed", source=BOUNDARY,
         principal=USER, identity=[S3_ALL], boundaries=[S3_ALL],
         resource_policy=np_allow(f"arn:aws:iam::{ACCT}:user/x")),
]

RCPS: list[Case] = [
    case("rcp-level-without-own-rcp-does-not-block", "Allowed", source=RCP_EVAL,
         identity=[S3_ALL], rcps=[[doc(deny("sqs:*", "*", Principal="*"))], []]),
    case("rcp-deny-at-ou-level-blocks", "ExplicitlyDenied", source=RCP_EVAL,
         identity=[S3_ALL], rcps=[[doc(allow("*", "*", Principal="*"))],
                                  [doc(deny("s3:*", "*", Principal="*"))]],
         blocked=["rcp"]),
    case("rcp-deny-at-account-level-blocks", "ExplicitlyDenied", source=RCP_EVAL,
         identity=[S3_ALL], rcps=[[], [], [doc(deny("s3:GetObject", OBJ, Principal="*"))]],
         blocked=["rcp"]),
    case("rcp-deny-other-action-does-not-block", "Allowed", source=RCP_EVAL,
         identity=[S3_ALL], rcps=[doc(deny("s3:DeleteObject", "*", Principal="*"))]),
    case("rcp-deny-condition-not-met-does-not-block", "Allowed", source=RCP_EVAL,
         identity=[S3_ALL], context={"aws:PrincipalOrgID": "o-exampleorg"},
         rcps=[doc(deny("s3:*", "*", Principal="*", Condition={
             "StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-exampleorg"}}))]),
    case("rcp-deny-condition-met-blocks", "ExplicitlyDenied", source=RCP_EVAL,
         identity=[S3_ALL], context={"aws:PrincipalOrgID": "o-otherorg"},
         rcps=[doc(deny("s3:*", "*", Principal="*", Condition={
             "StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-exampleorg"}}))]),
    case("rcp-does-not-grant-on-its-own", "ImplicitlyDenied", source=RCP_EVAL, identity=[],
         rcps=[doc(allow("*", "*", Principal="*"))], blocked=["identity"]),
    case("rcp-narrow-allow-does-not-restrict", "Allowed", source=RCP_EVAL,
         action="s3:PutObject", identity=[S3_ALL],
         rcps=[doc(allow("s3:GetObject", "*", Principal="*"))]),
    case("rcp-deny-blocks-external-principal", "ExplicitlyDenied", source=RCP_EVAL,
         principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL],
         context={"aws:PrincipalAccount": OTHER},
         resource_policy=doc(allow("s3:GetObject", OBJ, Principal={"AWS": OTHER})),
         rcps=[doc(deny("s3:*", "*", Principal="*", Condition={
             "StringNotEquals": {"aws:PrincipalAccount": ACCT}}))]),
    case("rcp-deny-blocks-anonymous-public-read", "ExplicitlyDenied", source=RCP_EVAL,
         principal="*", resource_policy=doc(allow("s3:GetObject", OBJ, Principal="*")),
         rcps=[doc(deny("s3:*", "*", Principal="*", Condition={
             "StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-exampleorg"}}))]),
]

GET_CALLER_IDENTITY: list[Case] = [
    case("gci-allowed-without-any-policy", "Allowed", source=GCI,
         action="sts:GetCallerIdentity", resource="*", identity=[]),
    case("gci-identity-explicit-deny-ignored", "Allowed", source=GCI,
         action="sts:GetCallerIdentity", resource="*",
         identity=[doc(deny("sts:GetCallerIdentity", "*"))]),
    case("gci-session-policy-explicit-deny-ignored", "Allowed", source=GCI,
         action="sts:GetCallerIdentity", resource="*", identity=[doc(allow("*", "*"))],
         session=doc(deny("sts:*", "*"))),
    case("gci-scp-explicit-deny-ignored", "Allowed", source=GCI, action="sts:GetCallerIdentity",
         resource="*", identity=[], scps=[doc(deny("*", "*"))]),
    case("gci-boundary-explicit-deny-ignored", "Allowed", source=GCI,
         action="sts:GetCallerIdentity", resource="*", identity=[],
         boundaries=[doc(deny("sts:*", "*"))]),
    case("gci-rcp-explicit-deny-ignored", "Allowed", source=GCI, action="sts:GetCallerIdentity",
         resource="*", identity=[], rcps=[doc(deny("*", "*", Principal="*"))]),
    case("gci-user-caller-deny-ignored", "Allowed", source=GCI, principal=USER,
         action="sts:GetCallerIdentity", resource="*",
         identity=[doc(deny("*", "*"))]),
    case("gci-action-name-case-insensitive", "Allowed", source=GCI,
         action="STS:getcalleridentity", resource="*", identity=[doc(deny("sts:*", "*"))]),
    case("gci-rule-is-only-for-get-caller-identity", "ExplicitlyDenied", source=GCI,
         action="sts:GetSessionToken", resource="*",
         identity=[doc(allow("*", "*"), deny("sts:*", "*"))]),
]

TRUST: list[Case] = [
    assume("trust-same-account-identity-allow-alone-denied", "ImplicitlyDenied",
           identity=[ASSUME_TARGET], resource_policy=trust({"AWS": f"arn:aws:iam::{ACCT}:user/x"}),
           blocked=["resource"]),
    assume("trust-same-account-empty-of-caller-with-admin-identity-denied", "ImplicitlyDenied",
           identity=[doc(allow("*", "*"))],
           resource_policy=trust({"Service": "lambda.amazonaws.com"}), blocked=["resource"]),
    assume("trust-same-account-user-named-needs-no-identity-policy", "Allowed",
           principal=USER, identity=[], resource_policy=trust({"AWS": USER})),
    assume("trust-same-account-session-arn-named-needs-no-identity-policy", "Allowed",
           identity=[], resource_policy=trust({"AWS": SESSION})),
    assume("trust-same-account-role-arn-named-limited-by-boundary", "ImplicitlyDenied",
           source=BOUNDARY, identity=[], boundaries=[EC2_ONLY],
           resource_policy=trust({"AWS": ROLE}), blocked=["identity", "permissionsBoundary"]),
    assume("trust-same-account-role-arn-named-limited-by-session-policy", "ImplicitlyDenied",
           source=BOUNDARY, identity=[], session=EC2_ONLY,
           resource_policy=trust({"AWS": ROLE}), blocked=["identity", "session"]),
    assume("trust-same-account-root-named-needs-identity-policy", "ImplicitlyDenied",
           source=TRUST_BLOG, identity=[], resource_policy=trust({"AWS": ROOT}),
           blocked=["identity"]),
    assume("trust-same-account-root-named-with-identity-policy", "Allowed",
           source=TRUST_BLOG, identity=[ASSUME_TARGET], resource_policy=trust({"AWS": ROOT})),
    assume("trust-same-account-account-id-named-needs-identity-policy", "ImplicitlyDenied",
           source=TRUST_BLOG, principal=USER, identity=[],
           resource_policy=trust({"AWS": ACCT}), blocked=["identity"]),
    assume("trust-same-account-root-named-identity-for-other-role", "ImplicitlyDenied",
           source=TRUST_BLOG, identity=[doc(allow("sts:AssumeRole",
                                                  f"arn:aws:iam::{ACCT}:role/Other"))],
           resource_policy=trust({"AWS": ROOT}), blocked=["identity"]),
    assume("trust-same-account-explicit-deny-in-trust", "ExplicitlyDenied", identity=[],
           resource_policy=doc(allow("sts:AssumeRole", None, Principal={"AWS": ROOT}),
                               deny("sts:AssumeRole", None, Principal={"AWS": SESSION})),
           blocked=["resource"]),
    assume("trust-same-account-identity-deny-beats-named-principal", "ExplicitlyDenied",
           identity=[doc(deny("sts:AssumeRole", "*"))], resource_policy=trust({"AWS": SESSION}),
           blocked=["identity"]),
    assume("trust-same-account-wildcard-with-principal-arn-condition", "Allowed",
           source=TRUST_BLOG, identity=[], context={"aws:PrincipalArn": ROLE},
           resource_policy=trust({"AWS": "*"}, Condition={
               "ArnEquals": {"aws:PrincipalArn": ROLE}})),
    assume("trust-same-account-wildcard-condition-mismatch", "ImplicitlyDenied",
           source=TRUST_BLOG, identity=[ASSUME_TARGET], context={"aws:PrincipalArn": ROLE},
           resource_policy=trust({"AWS": "*"}, Condition={
               "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/Ops"}}),
           blocked=["resource"]),
    assume("trust-policy-key-read-as-trust-policy", "Allowed", identity=[],
           trust=trust({"AWS": SESSION})),
    assume("trust-policy-key-same-account-identity-alone-denied", "ImplicitlyDenied",
           identity=[ASSUME_TARGET], trust=trust({"AWS": OTHER_ROOT}), blocked=["resource"]),
    assume("trust-cross-account-role-arn-named-identity-missing", "ImplicitlyDenied",
           source=TRUST_BLOG, principal=OTHER_SESSION, identity=[],
           resource_policy=trust({"AWS": OTHER_ROLE}), blocked=["identity"]),
    assume("trust-saml-other-provider-trusted-denied", "ImplicitlyDenied", source=SAML_TRUST,
           principal=SAML, action="sts:AssumeRoleWithSAML",
           resource_policy=trust({"Federated": f"arn:aws:iam::{ACCT}:saml-provider/other"},
                                 "sts:AssumeRoleWithSAML"), blocked=["resource"]),
    assume("trust-web-identity-action-not-in-trust-denied", "ImplicitlyDenied",
           source=OIDC_TRUST, principal=OIDC, action="sts:AssumeRoleWithWebIdentity",
           resource_policy=trust({"Federated": OIDC}, "sts:AssumeRoleWithSAML"),
           blocked=["resource"]),
    assume("trust-web-identity-trusted-provider-allowed", "Allowed", source=OIDC_TRUST,
           principal=OIDC, action="sts:AssumeRoleWithWebIdentity",
           resource_policy=trust({"Federated": OIDC}, "sts:AssumeRoleWithWebIdentity")),
]

STAR_WITH_BOUNDARY: list[Case] = [
    case("star-same-account-user-not-limited-by-boundary", "Allowed", source=BOUNDARY,
         principal=USER, identity=[], boundaries=[EC2_ONLY], resource_policy=star()),
    case("star-same-account-user-boundary-allows", "Allowed", source=BOUNDARY,
         principal=USER, identity=[], boundaries=[S3_ALL], resource_policy=star()),
    case("star-same-account-session-not-limited-by-boundary", "Allowed", source=BOUNDARY,
         identity=[], boundaries=[EC2_ONLY], resource_policy=star()),
    case("star-same-account-session-not-limited-by-session-policy", "Allowed",
         source=BOUNDARY, identity=[], session=EC2_ONLY, resource_policy=star()),
    case("aws-star-same-account-session-not-limited-by-boundary", "Allowed",
         source=PRINCIPAL, identity=[], boundaries=[EC2_ONLY],
         resource_policy=star({"AWS": "*"})),
    case("star-same-account-role-limited-by-boundary", "ImplicitlyDenied", source=BOUNDARY,
         principal=ROLE, identity=[], boundaries=[EC2_ONLY], resource_policy=star(),
         blocked=["identity", "permissionsBoundary"]),
    case("star-same-account-role-boundary-allows", "Allowed", source=BOUNDARY,
         principal=ROLE, identity=[], boundaries=[S3_ALL], resource_policy=star()),
    case("star-cross-account-boundary-limits", "ImplicitlyDenied", source=BOUNDARY,
         principal=OTHER_SESSION, account=ACCT, identity=[S3_ALL], boundaries=[EC2_ONLY],
         resource_policy=star(), blocked=["permissionsBoundary"]),
    case("star-explicit-deny-in-boundary-still-wins", "ExplicitlyDenied", source=BOUNDARY,
         identity=[], boundaries=[doc(allow("*", "*"), deny("s3:*", "*"))],
         resource_policy=star(), blocked=["permissionsBoundary"]),
]

CASES: list[Case] = [*NOT_PRINCIPAL, *RCPS, *GET_CALLER_IDENTITY, *TRUST, *STAR_WITH_BOUNDARY]
