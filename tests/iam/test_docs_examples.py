"""The simulate examples in docs/iam.md evaluate to the result the text gives for each."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from idp.iam import evaluate
from idp.iam.simfile import load_entry

DOC = Path(__file__).resolve().parents[2] / "docs" / "iam.md"
EXAMPLES = re.findall(r"```json\n(.*?)```\n\nResult: `(\w+)`(?:, blocked by `(\w+)`)?",
                      DOC.read_text(), re.S)


def test_every_policy_type_has_an_example() -> None:
    keys = set().union(*(json.loads(block) for block, _, _ in EXAMPLES))
    assert keys >= {"identityPolicies", "resourcePolicy", "trustPolicy", "permissionBoundaries",
                    "serviceControlPolicies", "resourceControlPolicies", "sessionPolicy"}


@pytest.mark.parametrize(("block", "response", "blocked"), [
    pytest.param(b, r, x, id=f"example-{i}") for i, (b, r, x) in enumerate(EXAMPLES)])
def test_doc_example_decides_as_documented(block: str, response: str, blocked: str) -> None:
    request, policies = load_entry(json.loads(block))
    decision = evaluate(request, policies)
    assert decision.response == response, decision
    if blocked:
        assert decision.blocked_by == (blocked,)


def test_explain_example_is_what_explain_prints() -> None:
    from idp.iam.explain import explain

    text = DOC.read_text()
    shown = re.search(r"```text\n(denied: the session policy .*?)\n```", text, re.S)
    assert shown
    block = next(b for b, _, _ in EXAMPLES if "sessionPolicy" in json.loads(b))
    request, policies = load_entry(json.loads(block))
    assert explain(request, policies, evaluate(request, policies)) == \
        shown.group(1).splitlines()
