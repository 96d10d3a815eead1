"""Run the documentation corpus (``tests/iam/corpus``) through the engine."""

from __future__ import annotations

import pytest

from idp.iam import evaluate
from idp.iam.simfile import load_entry
from tests.iam.corpus import Case, all_cases, simulate_entry

CASES = all_cases()


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in CASES])
def test_documented_decision(c: Case) -> None:
    request, policies = load_entry(simulate_entry(c))
    decision = evaluate(request, policies)
    assert decision.response == c["expect"], (c["source"], decision)
    if "blockedBy" in c:
        assert list(decision.blocked_by) == c["blockedBy"], decision
    if decision.response == "ExplicitlyDenied":
        assert decision.matched and all(m.effect == "Deny" for m in decision.matched)
    if decision.response == "Allowed":  # an Allow decided it, or no permission is needed
        assert any(m.effect == "Allow" for m in decision.matched) or \
            request.principal.endswith(":root") or \
            request.action.lower() == "sts:getcalleridentity"


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in CASES[::7]])
def test_uncached_and_cached_agree(c: Case) -> None:
    request, policies = load_entry(simulate_entry(c))
    first = evaluate(request, policies)
    again = evaluate(request, policies)
    policies.cache = False
    assert first == again == evaluate(request, policies)


def test_corpus_covers_every_family() -> None:
    text = repr(CASES)
    for needle in ("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringLike",
                   "StringNotLike", "NumericLessThan", "NumericEquals", "NumericNotEquals",
                   "NumericGreaterThan", "DateLessThan", "DateGreaterThan", "DateEquals",
                   "DateNotEquals", "'Bool'", "BinaryEquals", "'IpAddress'", "NotIpAddress",
                   "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "'Null'", "IfExists",
                   "ForAllValues:", "ForAnyValue:", "serviceControlPolicies",
                   "resourceControlPolicies", "permissionBoundaries", "sessionPolicy",
                   "resourcePolicy", "NotPrincipal", "NotAction", "NotResource"):
        assert needle in text, needle
    assert len(CASES) >= 320
    assert all(c["source"].startswith("https://") for c in CASES)
    assert len({c["id"] for c in CASES}) == len(CASES)
