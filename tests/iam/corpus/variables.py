"""Policy variables.

Page (IAM User Guide): reference_policies_variables.html ("Using variables in policies",
"Tags as policy variables", "Where you can use policy variables", "Policy variables with no
value", "Specifying default values", "Special characters", the ``Version`` element rule).
"""

from __future__ import annotations

from tests.iam.corpus import ACCT, BUCKET, USER, Case, allow, case, doc

VARS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html"
VERSION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html"
HOME = f"{BUCKET}/home/${{aws:username}}/*"


def home(cid: str, expect: str, resource: str, context: dict[str, object],
         pattern: str = HOME, version: str | None = "2012-10-17",
         source: str = VARS) -> Case:
    return case(cid, expect, source=source, principal=USER, resource=resource, context=context,
                identity=[doc(allow("s3:GetObject", pattern), version=version)])


CASES: list[Case] = [
    home("var-username-own-home", "Allowed", f"{BUCKET}/home/carlos/a.txt",
         {"aws:username": "carlos"}),
    home("var-username-other-home", "ImplicitlyDenied", f"{BUCKET}/home/alice/a.txt",
         {"aws:username": "carlos"}),
    home("var-key-case-insensitive", "Allowed", f"{BUCKET}/home/carlos/a.txt",
         {"aws:username": "carlos"}, pattern=f"{BUCKET}/home/${{AWS:UserName}}/*"),
    home("var-no-value-statement-invalid", "ImplicitlyDenied", f"{BUCKET}/home//a.txt", {}),
    home("var-default-value-used", "Allowed", f"{BUCKET}/home/shared/a.txt", {},
         pattern=f"{BUCKET}/home/${{aws:username, 'shared'}}/*"),
    home("var-default-ignored-when-present", "ImplicitlyDenied", f"{BUCKET}/home/shared/a.txt",
         {"aws:username": "carlos"}, pattern=f"{BUCKET}/home/${{aws:username, 'shared'}}/*"),
    home("var-default-escaped-quote", "Allowed", f"{BUCKET}/home/o'brien/a.txt", {},
         pattern=f"{BUCKET}/home/${{aws:username, 'o''brien'}}/*"),
    home("var-special-star-is-literal", "Allowed", f"{BUCKET}/home/*", {},
         pattern=f"{BUCKET}/home/${{*}}"),
    home("var-special-star-not-wildcard", "ImplicitlyDenied", f"{BUCKET}/home/anything", {},
         pattern=f"{BUCKET}/home/${{*}}"),
    home("var-special-question-is-literal", "ImplicitlyDenied", f"{BUCKET}/home/x", {},
         pattern=f"{BUCKET}/home/${{?}}"),
    home("var-special-dollar", "Allowed", f"{BUCKET}/home/$HOME", {},
         pattern=f"{BUCKET}/home/${{$}}HOME"),
    home("var-value-wildcard-is-literal", "ImplicitlyDenied", f"{BUCKET}/home/carlos/a.txt",
         {"aws:username": "*"}),
    home("version-2008-variables-literal", "ImplicitlyDenied", f"{BUCKET}/home/carlos/a.txt",
         {"aws:username": "carlos"}, version="2008-10-17", source=VERSION),
    home("version-2008-literal-text-matches", "Allowed",
         f"{BUCKET}/home/${{aws:username}}/a.txt", {"aws:username": "carlos"},
         version="2008-10-17", source=VERSION),
    home("version-missing-means-2008", "ImplicitlyDenied", f"{BUCKET}/home/carlos/a.txt",
         {"aws:username": "carlos"}, version=None, source=VERSION),
    home("var-multivalued-key-not-usable", "ImplicitlyDenied", f"{BUCKET}/home/carlos/a.txt",
         {"aws:username": ["carlos", "alice"]}),
    case("var-principal-tag-in-condition", "Allowed", source=VARS, action="ec2:StartInstances",
         resource="*", context={"aws:PrincipalTag/project": "apollo",
                                "aws:ResourceTag/project": "apollo"},
         identity=[doc(allow("ec2:StartInstances", "*", Condition={"StringEquals": {
             "aws:ResourceTag/project": "${aws:PrincipalTag/project}"}}))]),
    case("var-principal-tag-in-condition-mismatch", "ImplicitlyDenied", source=VARS,
         action="ec2:StartInstances", resource="*",
         context={"aws:PrincipalTag/project": "apollo", "aws:ResourceTag/project": "gemini"},
         identity=[doc(allow("ec2:StartInstances", "*", Condition={"StringEquals": {
             "aws:ResourceTag/project": "${aws:PrincipalTag/project}"}}))]),
    case("var-principal-tag-missing-statement-invalid", "ImplicitlyDenied", source=VARS,
         action="ec2:StartInstances", resource="*", context={"aws:ResourceTag/project": ""},
         identity=[doc(allow("ec2:StartInstances", "*", Condition={"StringEquals": {
             "aws:ResourceTag/project": "${aws:PrincipalTag/project}"}}))]),
    case("var-in-string-like-prefix", "Allowed", source=VARS, action="s3:ListBucket",
         resource=BUCKET, principal=USER,
         context={"aws:username": "carlos", "s3:prefix": "home/carlos/photos"},
         identity=[doc(allow("s3:ListBucket", BUCKET, Condition={"StringLike": {
             "s3:prefix": ["", "home/", "home/${aws:username}/*"]}}))]),
    case("var-in-string-like-prefix-other-user", "ImplicitlyDenied", source=VARS,
         action="s3:ListBucket", resource=BUCKET, principal=USER,
         context={"aws:username": "carlos", "s3:prefix": "home/alice/photos"},
         identity=[doc(allow("s3:ListBucket", BUCKET, Condition={"StringLike": {
             "s3:prefix": ["", "home/", "home/${aws:username}/*"]}}))]),
    case("var-saml-sub-in-resource", "Allowed", source=VARS, resource=f"{BUCKET}/saml/u-42/x",
         context={"saml:sub": "u-42"},
         identity=[doc(allow("s3:GetObject", f"{BUCKET}/saml/${{saml:sub}}/*"))]),
    case("var-userid-in-resource", "Allowed", source=VARS,
         resource=f"{BUCKET}/AROAEXAMPLEID:alice/x", context={"aws:userid": "AROAEXAMPLEID:alice"},
         identity=[doc(allow("s3:GetObject", f"{BUCKET}/${{aws:userid}}/*"))]),
    case("var-in-arn-like-condition", "Allowed", source=VARS, action="iam:ChangePassword",
         resource="*", principal=USER,
         context={"aws:username": "carlos", "aws:PrincipalArn": USER},
         identity=[doc(allow("iam:ChangePassword", "*", Condition={"ArnLike": {
             "aws:PrincipalArn": f"arn:aws:iam::{ACCT}:user/${{aws:username}}"}}))]),
    case("var-in-iam-resource-own-user", "Allowed", source=VARS, action="iam:GetUser",
         resource=USER, principal=USER, context={"aws:username": "carlos"},
         identity=[doc(allow("iam:GetUser", f"arn:aws:iam::{ACCT}:user/${{aws:username}}"))]),
    case("var-in-iam-resource-other-user", "ImplicitlyDenied", source=VARS, action="iam:GetUser",
         resource=f"arn:aws:iam::{ACCT}:user/alice", principal=USER,
         context={"aws:username": "carlos"},
         identity=[doc(allow("iam:GetUser", f"arn:aws:iam::{ACCT}:user/${{aws:username}}"))]),
]
