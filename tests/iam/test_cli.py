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
                 "unknown key `bogus`", id="unknown-key"),
    pytest.param({"request": {"principal": "arn:aws:iam::111122223333:user/a",
                              "action": "s3:GetObject"},
                  "identityPolicies": [{"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}]},
                 "MalformedPolicyDocument: identityPolicies[0]: Statement[0]: Policy statement "
                 "must contain resources.", id="malformed-policy"),
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
