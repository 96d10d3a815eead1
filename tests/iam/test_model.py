"""The IAM model: demo fixtures, config, role mapping, request contexts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idp.config import IamConfig
from idp.errors import ConfigError
from idp.iam import (
    IamModel,
    NoSuchEntity,
    Request,
    SessionDescription,
    build_context,
    demo_model,
    evaluate,
)

ISSUER = "http://127.0.0.1:8000"
ACCT = "111122223333"
SAML = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
OIDC = f"arn:aws:iam::{ACCT}:oidc-provider/127.0.0.1:8000"
ALL_ROLES = [f"arn:aws:iam::{ACCT}:role/{n}"
             for n in ("Admin", "Developer", "ReadOnly", "Operator")]
OPERATOR = f"arn:aws:iam::{ACCT}:role/Operator"
MFA = {"aws:MultiFactorAuthPresent": "true"}


@pytest.fixture(scope="module")
def demo() -> IamModel:
    return demo_model(ISSUER)


@pytest.mark.parametrize(("groups", "roles"), [
    pytest.param({"admins", "engineering"}, ["Admin", "Developer", "ReadOnly"], id="alice"),
    pytest.param({"engineering"}, ["Developer", "ReadOnly"], id="bob"),
    pytest.param(set(), ["ReadOnly"], id="carol-everyone-rule"),
    pytest.param({"operators"}, ["ReadOnly", "Operator"], id="dave"),
    pytest.param({"Admins"}, ["ReadOnly"], id="group-names-case-sensitive"),
])
def test_demo_mapping(demo: IamModel, groups: set[str], roles: list[str]) -> None:
    grants = demo.roles_for(groups, {"username": "alice"}, "urn:amazon:webservices", "saml")
    assert [g.role_arn.rsplit("/", 1)[1] for g in grants] == roles
    for g in grants:
        assert g.provider_arn == SAML and g.oidc_provider_arn == OIDC
        assert g.saml_role_value == f"{g.role_arn},{SAML}"
        assert g.principal_tags == {"username": "alice"}  # no email attribute: tag left out
        assert g.transitive_tag_keys == ("username",)


def test_demo_oidc_grants_use_oidc_provider(demo: IamModel) -> None:
    [g] = demo.roles_for([], {}, "demo-cli", "oidc")
    assert g.provider_arn == OIDC and g.principal_tags == {}
    assert g.max_session_duration == 43200


@pytest.mark.parametrize(("principal", "action", "context", "expect"), [
    pytest.param(SAML, "sts:AssumeRoleWithSAML",
                 {"saml:aud": "http://127.0.0.1:8000/federation/saml"},
                 "Allowed", id="saml-aud-is-our-federation-consumer"),
    pytest.param(SAML, "sts:AssumeRoleWithSAML", {"saml:aud": "urn:amazon:webservices"},
                 "ImplicitlyDenied", id="saml-aud-is-a-recipient-url-not-the-audience-urn"),
    pytest.param(SAML, "sts:TagSession", {"saml:aud": "https://signin.aws.amazon.com/saml"},
                 "Allowed", id="saml-tag-session"),
    pytest.param(SAML, "sts:AssumeRoleWithSAML", {"saml:aud": "https://other"},
                 "ImplicitlyDenied", id="saml-wrong-audience"),
    pytest.param(OIDC, "sts:AssumeRoleWithWebIdentity",
                 {"127.0.0.1:8000:aud": "demo-web", "127.0.0.1:8000:roles": ALL_ROLES},
                 "Allowed", id="oidc-demo-web-token-listing-every-role"),
    pytest.param(OIDC, "sts:AssumeRoleWithWebIdentity", {"127.0.0.1:8000:aud": "demo-web"},
                 "ImplicitlyDenied", id="oidc-aud-alone-admits-nobody"),
    pytest.param(OIDC, "sts:AssumeRoleWithWebIdentity",
                 {"127.0.0.1:8000:aud": "demo-web", "127.0.0.1:8000:roles": []},
                 "ImplicitlyDenied", id="oidc-empty-roles-claim"),
    pytest.param(OIDC, "sts:AssumeRoleWithWebIdentity",
                 {"127.0.0.1:8000:aud": "demo-service", "127.0.0.1:8000:roles": ALL_ROLES},
                 "ImplicitlyDenied", id="oidc-service-client-not-trusted"),
    pytest.param(OIDC, "sts:SetSourceIdentity",
                 {"127.0.0.1:8000:aud": "demo-web", "127.0.0.1:8000:roles": ALL_ROLES},
                 "ImplicitlyDenied", id="oidc-no-source-identity"),
])
def test_demo_trust_policies(demo: IamModel, principal: str, action: str,
                             context: dict[str, Any], expect: str) -> None:
    for role in demo.roles:
        ctx = {**context, **MFA} if role == OPERATOR else context  # see the test below
        d = evaluate(Request.make(principal, action, role, context=ctx), demo.trust_set(role))
        assert d.response == expect, (role, d)


@pytest.mark.parametrize(("principal", "action", "context"), [
    pytest.param(SAML, "sts:AssumeRoleWithSAML",
                 {"saml:aud": "http://127.0.0.1:8000/federation/saml"}, id="saml"),
    pytest.param(OIDC, "sts:AssumeRoleWithWebIdentity",
                 {"127.0.0.1:8000:aud": "demo-web", "127.0.0.1:8000:roles": [OPERATOR]},
                 id="web-identity"),
])
@pytest.mark.parametrize(("mfa", "expect"), [
    pytest.param({}, "ImplicitlyDenied", id="no-mfa-key"),
    pytest.param({"aws:MultiFactorAuthPresent": "false"}, "ImplicitlyDenied", id="mfa-false"),
    pytest.param(MFA, "Allowed", id="mfa-true"),
])
def test_demo_operator_trust_requires_mfa(demo: IamModel, principal: str, action: str,
                                          context: dict[str, Any], mfa: dict[str, str],
                                          expect: str) -> None:
    d = evaluate(Request.make(principal, action, OPERATOR, context={**context, **mfa}),
                 demo.trust_set(OPERATOR))
    assert d.response == expect, d


@pytest.mark.parametrize(("role", "listed", "expect"), [
    pytest.param("Admin", ["ReadOnly"], "ImplicitlyDenied", id="carol-token-asks-admin"),
    pytest.param("Admin", ["Developer", "ReadOnly"], "ImplicitlyDenied", id="bob-token-asks-admin"),
    pytest.param("Developer", ["Developer", "ReadOnly"], "Allowed", id="bob-token-developer"),
    pytest.param("ReadOnly", ["ReadOnly"], "Allowed", id="carol-token-readonly"),
    pytest.param("Admin", ["arn:aws:iam::111122223333:role/Admin2"], "ImplicitlyDenied",
                 id="similar-arn-is-not-the-role"),
    pytest.param("Admin", ["arn:aws:iam::111122223333:role/*"], "ImplicitlyDenied",
                 id="wildcard-in-claim-is-literal"),
])
def test_demo_web_identity_trust_needs_the_role_in_the_roles_claim(
        demo: IamModel, role: str, listed: list[str], expect: str) -> None:
    """The default trust policy names the role's own ARN in ``<provider>:roles``."""
    roles = [r if r.startswith("arn:") else f"arn:aws:iam::{ACCT}:role/{r}" for r in listed]
    context = {"127.0.0.1:8000:aud": "demo-cli", "127.0.0.1:8000:roles": roles}
    d = evaluate(Request.make(OIDC, "sts:AssumeRoleWithWebIdentity", demo.role(role).arn,
                              context=context), demo.trust_set(demo.role(role).arn))
    assert d.response == expect, d


@pytest.mark.parametrize(("role", "action", "expect"), [
    pytest.param("Admin", "iam:CreateUser", "Allowed", id="admin-everything"),
    pytest.param("Developer", "s3:PutObject", "Allowed", id="developer-s3"),
    pytest.param("Developer", "ec2:DescribeInstances", "Allowed", id="developer-ec2-read"),
    pytest.param("Developer", "ec2:TerminateInstances", "ImplicitlyDenied", id="developer-ec2"),
    pytest.param("Developer", "iam:GetRole", "ExplicitlyDenied", id="developer-no-iam"),
    pytest.param("ReadOnly", "dynamodb:GetItem", "Allowed", id="readonly-get"),
    pytest.param("ReadOnly", "s3:ListBucket", "Allowed", id="readonly-list"),
    pytest.param("ReadOnly", "s3:PutObject", "ImplicitlyDenied", id="readonly-no-write"),
])
def test_demo_permissions(demo: IamModel, role: str, action: str, expect: str) -> None:
    arn = demo.role(role).arn
    session = f"arn:aws:sts::{ACCT}:assumed-role/{role}/alice"
    assert evaluate(Request.make(session, action, "*"), demo.policy_set(arn)).response == expect


def test_demo_role_shapes(demo: IamModel) -> None:
    durations = {r.name: r.max_session_duration for r in demo.roles.values()}
    assert durations == {"Admin": 3600, "Developer": 14400, "ReadOnly": 43200, "Operator": 3600}
    assert demo.role("developer").arn == f"arn:aws:iam::{ACCT}:role/Developer"
    with pytest.raises(NoSuchEntity):
        demo.role("Nobody")
    assert list(demo.oidc_providers.values())[0].condition_prefix == "127.0.0.1:8000"


def test_issuer_with_path_gives_provider_path() -> None:
    m = demo_model("https://idp.example.com:8443/realms/main/")
    assert list(m.oidc_providers) == [
        f"arn:aws:iam::{ACCT}:oidc-provider/idp.example.com:8443/realms/main"]


def test_empty_config_is_empty_unless_demo() -> None:
    assert IamModel.from_config(IamConfig(), ISSUER).roles == {}
    assert len(IamModel.from_config(IamConfig(), ISSUER, demo=True).roles) == 4


CONFIG: dict[str, Any] = {
    "accounts": [{"id": "123456789012", "scps": ["RegionGuard"]}],
    "scps": [{"name": "RegionGuard", "document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}}]}}],
    "policies": [
        {"name": "Ec2All", "document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}},
        {"name": "Boundary", "path": "/b/", "document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:*", "s3:Get*"], "Resource": "*"}]}}],
    "saml_providers": [{"name": "corp", "metadata_xml": "<EntityDescriptor/>"}],
    "oidc_providers": [{"url": "https://login.example.com/", "client_ids": ["app"]}],
    "roles": [{"name": "Ops", "path": "/teams/", "managed_policies": ["Ec2All"],
               "permissions_boundary": "arn:aws:iam::123456789012:policy/b/Boundary",
               "inline_policies": {"S3": {"Version": "2012-10-17", "Statement": [
                   {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}},
               "max_session_duration": 7200, "tags": {"team": "ops"}}],
    "mapping": [{"role": "Ops", "attributes": {"department": ["ops", "sre*"]},
                 "service_providers": ["app"], "principal_tags": {"dept": "${department}"},
                 "transitive_tag_keys": ["dept"]}],
}


def test_model_from_config() -> None:
    m = IamModel.from_config(IamConfig.model_validate(CONFIG), "https://login.example.com")
    role = m.role("ops")
    assert role.arn == "arn:aws:iam::123456789012:role/teams/Ops"
    session = "arn:aws:sts::123456789012:assumed-role/Ops/s"
    ps = m.policy_set(role.arn)

    def decide(action: str, region: str) -> str:
        return evaluate(Request.make(session, action, "*", context={
            "aws:RequestedRegion": region}), ps).response

    assert decide("ec2:RunInstances", "eu-west-1") == "Allowed"
    assert decide("ec2:RunInstances", "us-east-1") == "ExplicitlyDenied"  # SCP
    assert decide("s3:GetObject", "eu-west-1") == "Allowed"
    assert decide("s3:PutObject", "eu-west-1") == "ImplicitlyDenied"  # boundary
    trust = m.trust_set(role.arn)
    oidc = "arn:aws:iam::123456789012:oidc-provider/login.example.com"
    assert evaluate(Request.make(oidc, "sts:AssumeRoleWithWebIdentity", role.arn, context={
        "login.example.com:aud": "app", "login.example.com:roles": [role.arn]}), trust).allowed
    assert not evaluate(Request.make(oidc, "sts:AssumeRoleWithWebIdentity", role.arn, context={
        "login.example.com:aud": "app"}), trust).allowed  # aud alone admits nobody
    [g] = m.roles_for([], {"department": "sre-emea"}, "app", "oidc")
    assert g.principal_tags == {"dept": "sre-emea"} and g.provider_arn == oidc
    assert m.roles_for([], {"department": "sre-emea"}, "other-client") == []
    assert m.roles_for([], {"department": "finance"}, "app") == []


def test_default_trust_takes_web_identity_only_from_this_idp() -> None:
    """Another IdP's `roles` claim is not the mapping's: its provider gets no default web
    identity statement (an explicit trust policy can trust it), SAML stays."""
    m = IamModel.from_config(IamConfig.model_validate(CONFIG), ISSUER)
    role = m.role("ops")
    actions = [s.get("Action") for s in role.trust_policy.document["Statement"]]
    assert actions == [["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"]]
    oidc = "arn:aws:iam::123456789012:oidc-provider/login.example.com"
    assert not evaluate(Request.make(oidc, "sts:AssumeRoleWithWebIdentity", role.arn, context={
        "login.example.com:aud": "app", "login.example.com:roles": [role.arn]}),
        m.trust_set(role.arn)).allowed


def test_config_problems_reported_together() -> None:
    bad = {**CONFIG, "roles": [{**CONFIG["roles"][0], "managed_policies": ["Missing"],
                                "inline_policies": {"X": {"Statement": [
                                    {"Effect": "Allow", "Action": "s3:*"}]}}}],
           "mapping": [{"role": "Nobody", "everyone": True}]}
    with pytest.raises(ConfigError) as info:
        IamModel.from_config(IamConfig.model_validate(bad), ISSUER)
    problems = info.value.problems
    assert "iam.roles[0].managed_policies: no policy `Missing`" in problems
    assert ("iam.roles[0].inline_policies.X: Statement[0]: Policy statement must contain "
            "resources.") in problems
    assert "iam.mapping[0].role: no role `Nobody`" in problems


@pytest.mark.parametrize("data", [
    pytest.param({"roles": [{"name": "R", "max_session_duration": 60}]}, id="duration-too-short"),
    pytest.param({"roles": [{"name": "R", "max_session_duration": 43201}]}, id="duration-long"),
    pytest.param({"accounts": [{"id": "12345"}]}, id="account-id-not-12-digits"),
    pytest.param({"mapping": [{"role": "R"}]}, id="mapping-rule-matches-nobody"),
    pytest.param({"roles": [{"name": "bad name"}]}, id="role-name-pattern"),
    pytest.param({"unknown": 1}, id="extra-key-forbidden"),
])
def test_config_rejects(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        IamConfig.model_validate(data)


def test_build_context_for_role_session() -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    ctx = build_context(SessionDescription(
        principal_arn=f"arn:aws:sts::{ACCT}:assumed-role/Developer/bob", now=now,
        role_arn=f"arn:aws:iam::{ACCT}:role/Developer", principal_id="AROAEXAMPLE",
        principal_tags={"team": "blue"}, request_tags={"env": "dev"}, source_identity="bob",
        mfa_authenticated_at=now - timedelta(minutes=5), token_issue_time=now,
        source_ip="203.0.113.9", secure_transport=True, requested_region="eu-west-1",
        saml={"sub": "bob", "aud": "urn:amazon:webservices"}, oidc_issuer=ISSUER,
        oidc_claims={"amr": ["pwd", "mfa"]}))
    assert ctx["aws:principalarn"] == f"arn:aws:iam::{ACCT}:role/Developer"
    assert ctx["aws:userid"] == "AROAEXAMPLE:bob"
    assert ctx["aws:principalaccount"] == ACCT and ctx["aws:principaltype"] == "AssumedRole"
    assert ctx["aws:principaltag/team"] == "blue" and ctx["aws:tagkeys"] == ("env",)
    assert ctx["aws:multifactorauthpresent"] == "true"
    assert ctx["aws:multifactorauthage"] == "300"
    assert ctx["aws:currenttime"] == "2025-06-01T12:00:00Z"
    assert ctx["aws:epochtime"] == str(int(now.timestamp()))
    assert ctx["saml:sub"] == "bob" and ctx["127.0.0.1:8000:amr"] == ("pwd", "mfa")
    assert "aws:username" not in ctx


def test_context_drives_policy_variables() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    user = f"arn:aws:iam::{ACCT}:user/carlos"
    ctx = build_context(SessionDescription(principal_arn=user, now=now))
    from idp.iam import PolicySet

    ps = PolicySet.build(identity=[{"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:*",
        "Resource": "arn:aws:s3:::home/${aws:username}/*"}]}])
    assert evaluate(Request.make(user, "s3:GetObject", "arn:aws:s3:::home/carlos/x", None, ctx),
                    ps).allowed
    assert not evaluate(Request.make(user, "s3:GetObject", "arn:aws:s3:::home/bob/x", None, ctx),
                        ps).allowed
