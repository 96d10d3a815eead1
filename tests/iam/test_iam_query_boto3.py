"""boto3 speaks to :func:`idp.iam.query.handle_iam_query` unmodified.

A werkzeug server in a thread hands the parsed form to ``handle_iam_query``.  There is no
signature check here: the real ``/iam`` endpoint verifies SigV4 before calling it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request as WsgiRequest
from werkzeug.wrappers import Response as WsgiResponse

from idp.iam import IamModel, demo_model, evaluate
from idp.iam.query import handle_iam_query
from idp.iam.simfile import load_entry
from tests.iam.corpus import Case, all_cases, simulate_entry

ISSUER = "http://127.0.0.1:8000"
DECISION = {"Allowed": "allowed", "ExplicitlyDenied": "explicitDeny",
            "ImplicitlyDenied": "implicitDeny"}


def _app(model: IamModel) -> Any:
    @WsgiRequest.application  # type: ignore[arg-type]
    def app(request: WsgiRequest) -> WsgiResponse:
        status, body = handle_iam_query(request.form.to_dict(), model, None)
        return WsgiResponse(body, status=status, content_type="text/xml")

    return app


@pytest.fixture(scope="module")
def iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import os

    os.environ.setdefault("AWS_CONFIG_FILE", str(tmp_path_factory.mktemp("aws") / "config"))
    server = make_server("127.0.0.1", 0, _app(demo_model(ISSUER)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield boto3.client(
            "iam", endpoint_url=f"http://127.0.0.1:{server.server_port}", region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}))
    finally:
        server.shutdown()
        thread.join()


def _ctype(value: Any) -> tuple[str, list[str]]:
    if isinstance(value, list):
        return "stringList", [str(v) for v in value]
    if isinstance(value, bool):
        return "boolean", ["true" if value else "false"]
    if isinstance(value, int):
        return "numeric", [str(value)]
    return "string", [str(value)]


def _eligible(c: Case) -> bool:
    return bool(c.get("identityPolicies")) and "sessionPolicy" not in c \
        and "resourceControlPolicies" not in c


def _kwargs(c: Case) -> dict[str, Any]:
    req = c["request"]
    res = req["resource"]
    kw: dict[str, Any] = {
        "PolicyInputList": [json.dumps(p) for p in c["identityPolicies"]],
        "ActionNames": [req["action"]], "CallerArn": req["principal"],
        "ResourceArns": [res["resource"] if isinstance(res, dict) else res],
    }
    if isinstance(res, dict):
        kw["ResourceOwner"] = f"arn:aws:iam::{res['accountId']}:root"
    if c.get("permissionBoundaries"):
        kw["PermissionsBoundaryPolicyInputList"] = [json.dumps(p)
                                                    for p in c["permissionBoundaries"]]
    if "resourcePolicy" in c or "trustPolicy" in c:
        kw["ResourcePolicy"] = json.dumps(c.get("resourcePolicy") or c["trustPolicy"])
    scps = c.get("serviceControlPolicies")
    if scps:
        levels = scps if isinstance(scps[0], list) else [scps]
        kw["OrderedOrganizationPolicyInputList"] = [
            {"ServiceControlPolicyInputList": [json.dumps(p) for p in level]} for level in levels]
    entries = []
    for key, value in req["context"].items():
        ktype, values = _ctype(value)
        entries.append({"ContextKeyName": key, "ContextKeyValues": values,
                        "ContextKeyType": ktype})
    if entries:
        kw["ContextEntries"] = entries
    return kw


def req_action(c: Case) -> str:
    return str(c["request"]["action"]).lower()


SAMPLE = [c for c in all_cases() if _eligible(c)]


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in SAMPLE])
def test_simulate_custom_policy_matches_library(iam: Any, c: Case) -> None:
    request, policies = load_entry(simulate_entry(c))
    expected = DECISION[evaluate(request, policies).response]
    assert expected == DECISION[c["expect"]]
    out = iam.simulate_custom_policy(**_kwargs(c))
    [result] = out["EvaluationResults"]
    assert result["EvalDecision"] == expected, result
    assert result["EvalActionName"] == c["request"]["action"]
    assert out["IsTruncated"] is False
    if expected != "implicitDeny" and req_action(c) != "sts:getcalleridentity":
        assert result["MatchedStatements"], result
        for st in result["MatchedStatements"]:
            assert st["SourcePolicyId"].startswith(("PolicyInputList.", "ResourcePolicy",
                                                    "PermissionsBoundaryPolicyInputList.",
                                                    "OrderedOrganizationPolicyInputList."))
            assert st["StartPosition"]["Line"] >= 1


def test_simulate_reports_missing_context_and_positions(iam: Any) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}]}, indent=2)
    out = iam.simulate_custom_policy(PolicyInputList=[policy],
                                     ActionNames=["ec2:RunInstances", "s3:GetObject"])
    ec2, s3 = out["EvaluationResults"]
    assert ec2["EvalDecision"] == "implicitDeny"
    assert ec2["MissingContextValues"] == ["aws:RequestedRegion"]
    assert s3["EvalDecision"] == "allowed"
    [st] = s3["MatchedStatements"]
    assert st["SourcePolicyId"] == "PolicyInputList.1"
    assert st["StartPosition"] == {"Line": 4, "Column": 5}
    assert st["EndPosition"]["Line"] == 8


def test_simulate_pagination(iam: Any) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]})
    actions = [f"s3:GetThing{i}" for i in range(5)] + ["s3:PutObject"]
    pages = iam.get_paginator("simulate_custom_policy").paginate(
        PolicyInputList=[policy], ActionNames=actions, PaginationConfig={"PageSize": 2})
    decisions = [r["EvalDecision"] for p in pages for r in p["EvaluationResults"]]
    assert decisions == ["allowed"] * 5 + ["implicitDeny"]


def test_simulate_malformed_policy(iam: Any) -> None:
    with pytest.raises(ClientError) as info:
        iam.simulate_custom_policy(PolicyInputList=['{"Statement": [{"Action": "s3:*"}]}'],
                                   ActionNames=["s3:GetObject"])
    err = info.value.response
    assert err["Error"]["Code"] == "MalformedPolicyDocument"
    assert err["Error"]["Message"] == "Missing required field Effect"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_simulate_principal_policy_demo_roles(iam: Any) -> None:
    dev = "arn:aws:iam::111122223333:role/Developer"
    out = iam.simulate_principal_policy(
        PolicySourceArn=dev, ActionNames=["s3:PutObject", "iam:CreateUser", "ec2:RunInstances"])
    got = {r["EvalActionName"]: r["EvalDecision"] for r in out["EvaluationResults"]}
    assert got == {"s3:PutObject": "allowed", "iam:CreateUser": "explicitDeny",
                   "ec2:RunInstances": "implicitDeny"}
    deny = next(r for r in out["EvaluationResults"] if r["EvalDecision"] == "explicitDeny")
    assert deny["MatchedStatements"][0]["SourcePolicyType"] == "role"
    assert deny["MatchedStatements"][0]["SourcePolicyId"] == "DeveloperAccess"


def test_simulate_principal_policy_unknown_role(iam: Any) -> None:
    with pytest.raises(iam.exceptions.NoSuchEntityException) as info:
        iam.simulate_principal_policy(PolicySourceArn="arn:aws:iam::111122223333:role/Nope",
                                      ActionNames=["s3:GetObject"])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_get_role(iam: Any) -> None:
    role = iam.get_role(RoleName="Developer")["Role"]
    assert role["Arn"] == "arn:aws:iam::111122223333:role/Developer"
    assert role["MaxSessionDuration"] == 14400
    assert role["RoleId"].startswith("AROA")
    trust = role["AssumeRolePolicyDocument"]  # botocore URL-decodes and parses it
    federated = [s["Principal"]["Federated"] for s in trust["Statement"]]
    assert federated == ["arn:aws:iam::111122223333:saml-provider/demo-idp",
                         "arn:aws:iam::111122223333:oidc-provider/127.0.0.1:8000"]
    assert trust["Statement"][1]["Condition"]["StringEquals"]["127.0.0.1:8000:aud"] == [
        "demo-cli", "demo-web", "aws-sso"]


def test_get_role_unknown(iam: Any) -> None:
    with pytest.raises(iam.exceptions.NoSuchEntityException) as info:
        iam.get_role(RoleName="Nobody")
    assert info.value.response["Error"]["Message"] == "The role with name Nobody cannot be found."


def test_list_roles_paginates(iam: Any) -> None:
    first = iam.list_roles(MaxItems=2)
    assert first["IsTruncated"] is True and len(first["Roles"]) == 2
    names = [r["RoleName"] for p in iam.get_paginator("list_roles").paginate(
        PaginationConfig={"PageSize": 1}) for r in p["Roles"]]
    assert names == ["Admin", "Developer", "Operator", "ReadOnly"]


def test_unknown_action_and_bad_max_items() -> None:
    model = demo_model(ISSUER)
    status, body = handle_iam_query({"Action": "DeleteRole", "Version": "2010-05-08"}, model)
    assert status == 400 and "<Code>InvalidAction</Code>" in body
    assert "<Type>Sender</Type>" in body and "<RequestId>" in body
    status, body = handle_iam_query({"Action": "ListRoles", "MaxItems": "0"}, model)
    assert status == 400 and "<Code>ValidationError</Code>" in body
    status, body = handle_iam_query({"Action": "GetRole"}, model)
    assert status == 400 and "<Code>MissingParameter</Code>" in body


@pytest.mark.parametrize(("caller", "action", "status"), [
    pytest.param("arn:aws:sts::111122223333:assumed-role/Admin/alice", "GetRole", 200,
                 id="admin-may-get-role"),
    pytest.param("arn:aws:sts::111122223333:assumed-role/ReadOnly/carol", "GetRole", 200,
                 id="readonly-may-get-role"),
    pytest.param("arn:aws:sts::111122223333:assumed-role/Developer/bob", "GetRole", 403,
                 id="developer-denied-iam"),
    pytest.param("arn:aws:sts::111122223333:assumed-role/ReadOnly/carol",
                 "SimulateCustomPolicy", 403, id="readonly-may-not-simulate"),
    pytest.param("arn:aws:sts::999999999999:assumed-role/Admin/eve", "GetRole", 403,
                 id="unknown-account-denied"),
])
def test_caller_is_authorized_by_the_engine(caller: str, action: str, status: int) -> None:
    params = {"Action": action, "RoleName": "Admin", "ActionNames.member.1": "s3:GetObject",
              "PolicyInputList.member.1": '{"Statement":{"Effect":"Allow","Action":"*",'
                                          '"Resource":"*"}}'}
    got, body = handle_iam_query(params, demo_model(ISSUER), caller)
    assert got == status, body
    if status == 403:
        assert "<Code>AccessDenied</Code>" in body and f"User: {caller}" in body


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in SAMPLE[::4]])
def test_cli_input_json_answers_like_simulate_custom_policy(iam: Any, c: Case,
                                                            tmp_path: Any) -> None:
    """``idp policy simulate`` fed ``aws iam simulate-custom-policy --cli-input-json`` input
    prints what ``POST /iam`` answers (as boto3 parses it)."""
    from click.testing import CliRunner

    from idp.iam.cli import policy

    kw = _kwargs(c)
    path = tmp_path / "aws.json"
    path.write_text(json.dumps(kw), encoding="utf-8")
    result = CliRunner().invoke(policy, ["simulate", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    expected = iam.simulate_custom_policy(**kw)
    assert out["EvaluationResults"] == expected["EvaluationResults"]
    assert out["IsTruncated"] is expected["IsTruncated"] is False


def test_cli_input_json_errors_like_the_api(iam: Any, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from idp.iam.cli import policy

    kw = {"PolicyInputList": ['{"Statement": {"Effect": "Allow", "Action": "s3:*"}}'],
          "ActionNames": ["s3:GetObject"]}
    path = tmp_path / "aws.json"
    path.write_text(json.dumps(kw), encoding="utf-8")
    result = CliRunner().invoke(policy, ["simulate", str(path)])
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    with pytest.raises(ClientError) as caught:
        iam.simulate_custom_policy(**kw)
    assert error["code"] == caught.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert error["message"] == caught.value.response["Error"]["Message"]
    path.write_text(json.dumps({**kw, "PolicyInput": []}), encoding="utf-8")
    result = CliRunner().invoke(policy, ["simulate", str(path)])
    assert result.exit_code == 1
    assert "unknown key `PolicyInput`; valid keys: PolicyInputList," in result.output
