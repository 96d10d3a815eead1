"""``idp policy validate`` / ``idp policy simulate`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idp.iam.cli import policy
from tests.iam.corpus import all_cases, simulate_entry

CASES = all_cases()


def write(tmp_path: Path, data: Any, name: str = "in.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_simulate_list_prints_one_result_per_request(tmp_path: Path) -> None:
    sample = CASES[::10]
    result = CliRunner().invoke(policy, ["simulate", write(tmp_path, [simulate_entry(c)
                                                                      for c in sample])])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(sample)
    for c, line in zip(sample, lines, strict=True):
        out = json.loads(line)
        assert out["response"] == c["expect"], c["id"]
        assert set(out) >= {"response", "blockedBy", "matched"}


def test_simulate_single_entry_explains(tmp_path: Path) -> None:
    entry = next(simulate_entry(c) for c in CASES if c["id"] == "explicit-deny-scp-wins")
    result = CliRunner().invoke(policy, ["simulate", "--pretty", write(tmp_path, entry)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["response"] == "ExplicitlyDenied"
    assert out["blockedBy"] == ["scp"]
    assert out["matched"] == [{"policyType": "scp", "policyId": "serviceControlPolicies[1]",
                               "sid": "NoS3", "statementIndex": 0, "effect": "Deny"}]


@pytest.mark.parametrize(("data", "message"), [
    pytest.param("{oops", "is not valid JSON", id="not-json"),
    pytest.param([], "empty list", id="empty-list"),
    pytest.param({"request": {"principal": "arn:aws:iam::111122223333:user/a"}},
                 "`request.action` must be", id="missing-action"),
    pytest.param({"request": {"principal": "x", "action": "s3:GetObject"}, "bogus": 1},
                 "unknown key `bogus`; valid keys: request, identityPolicies, resourcePolicy, "
                 "trustPolicy, permissionBoundaries, sessionPolicy, serviceControlPolicies, "
                 "resourceControlPolicies", id="unknown-key-lists-valid-keys"),
    pytest.param({"request": {"principal": "x", "action": "s3:GetObject", "actor": "y"}},
                 "unknown key `request.actor`; valid keys: principal, action, resource, context",
                 id="unknown-request-key-lists-valid-keys"),
    pytest.param({"request": {"principal": "arn:aws:iam::111122223333:user/a",
                              "action": "s3:GetObject"},
                  "identityPolicies": [{"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}]},
                 '{"code": "MalformedPolicyDocument", "message": "Policy statement must contain '
                 'resources.", "path": "identityPolicies[0].Statement[0]"}',
                 id="malformed-policy"),
    pytest.param({"request": {"principal": "arn:aws:iam::111122223333:user/a",
                              "action": "s3:GetObject"}, "identityPolicies": ["{oops"]},
                 '{"code": "MalformedPolicyDocument", "message": "Syntax errors in policy.", '
                 '"path": "identityPolicies[0]"}', id="policy-text-not-json-is-an-error"),
    pytest.param({"request": {"principal": "a", "action": "s3:X", "context": {"k": {"x": 1}}}},
                 "context value of type `dict` is not supported", id="bad-context-value"),
])
def test_simulate_invalid_input(tmp_path: Path, data: Any, message: str) -> None:
    result = CliRunner().invoke(policy, ["simulate", write(tmp_path, data)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_validate_policy_document(tmp_path: Path) -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                   "Resource": "*"}]}
    result = CliRunner().invoke(policy, ["validate", write(tmp_path, doc)])
    assert result.exit_code == 0, result.output
    assert "valid identity policy, 1 statement(s)" in result.output


@pytest.mark.parametrize(("kind", "doc", "message"), [
    pytest.param("identity", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]},
        "Statement[0]: Policy document should not specify a principal.", id="identity-principal"),
    pytest.param("trust", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
         "Resource": "*"}]}, "Has prohibited field Resource.", id="trust-resource"),
    pytest.param("identity", {"Version": "2012-10-17", "Statement": [
        {"Action": "s3:*", "Resource": "*"}]}, "Missing required field Effect", id="no-effect"),
])
def test_validate_rejects(tmp_path: Path, kind: str, doc: Any, message: str) -> None:
    result = CliRunner().invoke(policy, ["validate", "--type", kind, write(tmp_path, doc)])
    assert result.exit_code == 1
    assert "MalformedPolicyDocument" in result.output and message in result.output


def test_validate_simulate_file(tmp_path: Path) -> None:
    entries = [simulate_entry(c) for c in CASES[:5]]
    result = CliRunner().invoke(policy, ["validate", write(tmp_path, entries)])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 5


def test_validate_stdin() -> None:
    doc = '{"Statement": {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}}'
    result = CliRunner().invoke(policy, ["validate", "-"], input=doc)
    assert result.exit_code == 0, result.output


GOOD = {"request": {"principal": "arn:aws:iam::111122223333:user/a", "action": "s3:GetObject"},
        "identityPolicies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}]}
BAD_STATEMENTS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*"},
    {"Effect": "Allow", "Action": "s3", "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def test_simulate_one_bad_entry_does_not_sink_the_file(tmp_path: Path) -> None:
    bad = {**GOOD, "identityPolicies": [BAD_STATEMENTS]}
    result = CliRunner().invoke(policy, ["simulate", write(tmp_path, [GOOD, bad, GOOD])])
    assert result.exit_code == 1, result.output
    first, middle, last = (json.loads(line) for line in result.output.splitlines())
    assert first["response"] == last["response"] == "Allowed"
    # AWS's own order first (action formats are checked before resources), then the rest
    assert middle["error"] == {
        "code": "MalformedPolicyDocument", "path": "identityPolicies[0].Statement[1].Action",
        "message": "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."}
    assert middle["otherErrors"] == [{"code": "MalformedPolicyDocument",
                                      "message": "Policy statement must contain resources.",
                                      "path": "identityPolicies[0].Statement[0]"}]


def test_simulate_exit_status_zero_when_every_entry_evaluates(tmp_path: Path) -> None:
    denied = {**GOOD, "request": {**GOOD["request"], "action": "ec2:RunInstances"}}
    result = CliRunner().invoke(policy, ["simulate", write(tmp_path, [GOOD, denied])])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["response"] for x in result.output.splitlines()] == [
        "Allowed", "ImplicitlyDenied"]


def test_validate_reports_every_problem_of_every_document(tmp_path: Path) -> None:
    bad_entry = {**GOOD, "identityPolicies": [BAD_STATEMENTS, GOOD["identityPolicies"][0]],
                 "sessionPolicy": {"Statement": {"Effect": "Maybe", "Action": "s3:*",
                                                 "Resource": "*"}}, "extra": 1}
    result = CliRunner().invoke(policy, ["validate", write(tmp_path, [GOOD, bad_entry])])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    name = str(tmp_path / "in.json")
    assert lines[0] == f"{name}[0]: 1 valid policy document(s)"
    assert f"{name}[1] extra: ValidationError: unknown key `extra`; valid keys: " in lines[1]
    assert lines[2:] == [
        f"{name}[1] identityPolicies[0].Statement[1].Action: MalformedPolicyDocument: "
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        f"{name}[1] identityPolicies[0].Statement[0]: MalformedPolicyDocument: Policy "
        "statement must contain resources.",
        f"{name}[1] sessionPolicy[0].Statement.Effect: MalformedPolicyDocument: Syntax errors "
        "in policy."]


def test_validate_document_reports_every_statement(tmp_path: Path) -> None:
    result = CliRunner().invoke(policy, ["validate", write(tmp_path, BAD_STATEMENTS)])
    assert result.exit_code == 1
    assert result.output.count("MalformedPolicyDocument") == 2
    assert "Statement[1].Action: Actions/Conditions must be prefaced" in result.output


def explain_of(tmp_path: Path, entry: dict[str, Any]) -> list[str]:
    result = CliRunner().invoke(policy, ["simulate", "--explain", write(tmp_path, entry)])
    assert result.exit_code == 0, result.output
    out: list[str] = json.loads(result.output)["explanation"]
    return out


OBJ = "arn:aws:s3:::amzn-s3-demo-bucket/report.csv"
SESSION = "arn:aws:sts::111122223333:assumed-role/Dev/alice"


@pytest.mark.parametrize(("entry", "expected"), [
    pytest.param({"request": {"principal": SESSION, "action": "s3:PutObject", "resource": OBJ},
                  "identityPolicies": [{"Statement": [{"Effect": "Allow", "Action": "s3:Get*",
                                                       "Resource": "*"}]}]},
                 [f"denied: no identity policy allows s3:PutObject on {OBJ}; together they "
                  "allow s3:Get*"], id="identity-lacks-action"),
    pytest.param({"request": {"principal": SESSION, "action": "s3:PutObject", "resource": OBJ},
                  "identityPolicies": [{"Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                       "Resource": "*"}]}],
                  "sessionPolicy": {"Statement": [{"Effect": "Allow", "Action": "s3:Get*",
                                                   "Resource": "*"}]}},
                 [f"denied: the session policy allows only s3:Get*, not s3:PutObject on {OBJ}",
                  "the identity policy allows it: identityPolicies[0] statement 0 (not enough "
                  "on its own)"], id="session-policy-allows-only"),
    pytest.param({"request": {"principal": SESSION, "action": "s3:GetObject", "resource": OBJ},
                  "identityPolicies": [{"Statement": [
                      {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                      {"Sid": "NoReports", "Effect": "Deny", "Action": "s3:GetObject",
                       "Resource": "*"}]}]},
                 ["denied: the identity policy identityPolicies[0] statement 1 `NoReports` "
                  f"explicitly denies s3:GetObject on {OBJ}; an explicit deny overrides every "
                  "allow"], id="explicit-deny-named"),
    pytest.param({"request": {"principal": SESSION, "action": "s3:GetObject", "resource": OBJ},
                  "identityPolicies": [{"Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                       "Resource": "arn:aws:s3:::other/*"}]}]},
                 ["denied: the identity policy has statements for s3:GetObject "
                  "(identityPolicies[0] statement 0) but their resource, principal or condition "
                  f"does not match {OBJ}"], id="resource-mismatch-named"),
    pytest.param({"request": {"principal": SESSION, "action": "s3:GetObject", "resource": OBJ},
                  "identityPolicies": [{"Statement": [{"Sid": "Read", "Effect": "Allow",
                                                       "Action": "s3:*", "Resource": "*"}]}],
                  "serviceControlPolicies": [[{"Statement": [
                      {"Effect": "Allow", "Action": "*", "Resource": "*"}]}],
                      [{"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}]]},
                 [f"denied: an SCP level has no statement allowing s3:GetObject on {OBJ}; every "
                  "level of the organization must allow (the SCPs allow *, ec2:*)",
                  "the identity policy allows it: identityPolicies[0] statement 0 `Read` (not "
                  "enough on its own)",
                  "the service control policy (SCP) allows it: serviceControlPolicies[0][0] "
                  "statement 0 (not enough on its own)"], id="scp-level-missing"),
    pytest.param({"request": {"principal": SESSION, "action": "sts:GetCallerIdentity"},
                  "identityPolicies": [{"Statement": [{"Effect": "Deny", "Action": "*",
                                                       "Resource": "*"}]}]},
                 ["allowed: sts:GetCallerIdentity needs no permission and cannot be denied "
                  "(STS API Reference, GetCallerIdentity); no policy is consulted"],
                 id="get-caller-identity"),
    pytest.param({"request": {"principal": SESSION, "action": "s3:GetObject", "resource": OBJ},
                  "identityPolicies": [{"Statement": [{"Sid": "Read", "Effect": "Allow",
                                                       "Action": "s3:*", "Resource": "*"}]}]},
                 [f"allowed: s3:GetObject on {OBJ}",
                  "the identity policy allows it: identityPolicies[0] statement 0 `Read`"],
                 id="allowed-names-statement"),
])
def test_explain_in_plain_words(tmp_path: Path, entry: dict[str, Any],
                                expected: list[str]) -> None:
    assert explain_of(tmp_path, entry) == expected


def test_explain_names_the_trust_policy_and_missing_context(tmp_path: Path) -> None:
    entry = {"request": {"principal": SESSION, "action": "sts:AssumeRole",
                         "resource": "arn:aws:iam::111122223333:role/Target"},
             "identityPolicies": [{"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Resource": "*"}]}],
             "trustPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": SESSION},
                                            "Action": "sts:AssumeRole", "Condition": {
                                                "Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}}
    lines = explain_of(tmp_path, entry)
    assert lines[0].startswith("denied: the trust policy has statements for sts:AssumeRole")
    assert lines[1] == "the identity policy allows it: identityPolicies[0] statement 0 (not " \
        "enough on its own)"
    assert lines[2] == "the request has no value for `aws:MultiFactorAuthPresent`, which a " \
        "condition reads"
