"""The trust policies docs/iam.md shows are what the code builds and decide as the text says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from idp.iam import PolicySet, Request, demo_model, evaluate, parse_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "iam.md"
ENGINEER = "arn:aws:iam::123456789012:role/Engineer"
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/idp.example.org"


def _examples() -> list[dict[str, Any]]:
    text = DOC.read_text().split("## Trust policies for federated roles", 1)[1]
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_doc_shows_the_demo_default_trust_policy() -> None:
    demo, _ = _examples()
    assert demo == demo_model("http://127.0.0.1:8000").role("Developer").trust_policy.document


@pytest.mark.parametrize(("context", "expect"), [
    pytest.param({"idp.example.org:aud": "cli", "idp.example.org:roles": [ENGINEER]},
                 "Allowed", id="token-listing-the-role"),
    pytest.param({"idp.example.org:aud": "cli", "idp.example.org:roles": [
        "arn:aws:iam::123456789012:role/ReadOnly"]}, "ImplicitlyDenied",
                 id="token-listing-other-roles"),
    pytest.param({"idp.example.org:aud": "cli"}, "ImplicitlyDenied", id="token-without-roles"),
    pytest.param({"idp.example.org:aud": "other", "idp.example.org:roles": [ENGINEER]},
                 "ImplicitlyDenied", id="other-client"),
])
def test_doc_explicit_trust_policy_decides_as_described(context: dict[str, Any],
                                                        expect: str) -> None:
    _, explicit = _examples()
    trust = PolicySet(resource=parse_policy(explicit, "trust", "doc"))
    d = evaluate(Request.make(PROVIDER, "sts:AssumeRoleWithWebIdentity", ENGINEER,
                              context=context), trust)
    assert d.response == expect, d
