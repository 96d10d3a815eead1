"""Device flow, the user's side (RFC 8628 §3.3, §5.1-5.2): every request that names a user
code, whichever step it is (lookup, approve, deny), spends one attempt of one budget per
person and one per client address, checks expiry, and is audited."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
import requests

from idp.oidc import device
from tests.fixtures.live import LiveIdp
from tests.oidc import rp

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
BUDGET = device.GUESSES_PER_PERSON


class User:
    """A signed-in browser on the ``/device`` page."""

    def __init__(self, idp: LiveIdp, name: str) -> None:
        self.base = idp.url
        self.browser = requests.Session()
        rp.login(self.browser, self.base, name, next_path="/device")
        self.csrf = rp.form_value(rp._CSRF, self.browser.get(f"{self.base}/device",
                                                             timeout=5).text)

    def post(self, code: str, decision: str | None = None,
             csrf: bool = True) -> requests.Response:
        data = {"user_code": code}
        if csrf:
            data["csrf_token"] = self.csrf
        if decision:
            data["decision"] = decision
        return self.browser.post(f"{self.base}/device", data=data, timeout=5)


def wrong_code() -> str:
    """A well-formed user code that was never issued (the alphabet has no vowels)."""
    code = "".join(secrets.choice(device.ALPHABET) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


def start(idp: LiveIdp) -> dict[str, Any]:
    r = requests.post(f"{idp.url}/oauth2/device_authorization", timeout=5,
                      data={"client_id": "demo-cli", "scope": "openid"})
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def status(idp: LiveIdp, started: dict[str, Any]) -> str:
    rec = idp.components.extras["oidc"].core.state.get_device(started["device_code"])
    assert rec is not None
    return str(rec["status"])


def spend(user: User, n: int, decision: str | None) -> list[int]:
    return [user.post(wrong_code(), decision).status_code for _ in range(n)]


def events(idp: LiveIdp, name: str) -> list[dict[str, Any]]:
    return [e for e in idp.audit.records if e["eventName"] == name]


def test_guessing_through_decision_approve_is_throttled_after_the_budget(
        demo_idp: LiveIdp) -> None:
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    codes = spend(alice, 200, "approve")
    assert codes[:BUDGET] == [400] * BUDGET  # unknown code
    assert codes[BUDGET:] == [429] * (200 - BUDGET)  # slow_down
    # once the budget is spent, even the right code is refused
    assert alice.post(started["user_code"], "approve").status_code == 429
    assert status(demo_idp, started) == "pending"


@pytest.mark.parametrize("spent_by, then", [
    pytest.param(None, "approve", id="lookups-spend-the-budget-of-approvals"),
    pytest.param("approve", None, id="approvals-spend-the-budget-of-lookups"),
    pytest.param("deny", "approve", id="denials-spend-the-budget-of-approvals"),
])
def test_lookup_and_decision_share_one_budget(demo_idp: LiveIdp, spent_by: str | None,
                                              then: str | None) -> None:
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    half = BUDGET // 2
    assert spend(alice, half, None) + spend(alice, BUDGET - half, spent_by) == [400] * BUDGET
    r = alice.post(started["user_code"], then)
    assert r.status_code == 429 and 'id="device-error"' in r.text
    assert status(demo_idp, started) == "pending"


def test_budget_is_per_person_across_sessions_not_per_session(demo_idp: LiveIdp) -> None:
    started = start(demo_idp)
    first = User(demo_idp, "alice")
    assert spend(first, BUDGET, None) == [400] * BUDGET
    second = User(demo_idp, "alice")  # a new browser session of the same person
    assert second.post(started["user_code"]).status_code == 429
    assert second.post(started["user_code"], "approve").status_code == 429
    # the address still has budget: another person on it is not held back
    bob = User(demo_idp, "bob")
    assert 'value="approve"' in bob.post(started["user_code"]).text


def test_budget_per_address_holds_across_people(demo_idp: LiveIdp,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "GUESSES_PER_ADDRESS", BUDGET + 5)
    started = start(demo_idp)
    assert spend(User(demo_idp, "alice"), BUDGET, "approve") == [400] * BUDGET
    bob = User(demo_idp, "bob")
    assert spend(bob, 5, "deny") == [400] * 5
    assert bob.post(started["user_code"], "approve").status_code == 429
    assert User(demo_idp, "carol").post(started["user_code"]).status_code == 429
    assert status(demo_idp, started) == "pending"


def test_expired_code_cannot_be_approved_through_the_decision_step(demo_idp: LiveIdp) -> None:
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    core = demo_idp.components.extras["oidc"].core
    later = time.time() + started["expires_in"] + 1
    core.clock = lambda: later  # the code expired (its record stays a minute longer)
    r = alice.post(started["user_code"], "approve")
    assert r.status_code == 400 and "expired" in r.text
    assert status(demo_idp, started) == "pending"


@pytest.mark.parametrize("first, then", [
    pytest.param("deny", "approve", id="approve-after-deny"),
    pytest.param("approve", "deny", id="deny-after-approve"),
    pytest.param("approve", "approve", id="approve-twice"),
])
def test_answer_without_lookup_needs_a_valid_pending_code(demo_idp: LiveIdp, first: str,
                                                          then: str) -> None:
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    assert 'id="device-done"' in alice.post(started["user_code"], first).text
    r = alice.post(started["user_code"], then)
    assert r.status_code == 400 and "unknown or expired code" in r.text.lower()
    assert status(demo_idp, started) == ("approved" if first == "approve" else "denied")
    assert alice.post(wrong_code(), "approve").status_code == 400


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_decision_without_csrf_token_is_refused(demo_idp: LiveIdp, decision: str) -> None:
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    r = alice.post(started["user_code"], decision, csrf=False)
    assert r.status_code == 400 and 'id="device-done"' not in r.text
    assert status(demo_idp, started) == "pending"


def test_every_user_code_attempt_is_audited(demo_idp: LiveIdp,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "GUESSES_PER_PERSON", 4)
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    alice.post(wrong_code())
    alice.post(wrong_code(), "approve")
    alice.post(started["user_code"])
    alice.post(started["user_code"], "approve")
    alice.post(started["user_code"], "deny")  # over the budget of 4
    refused = events(demo_idp, "OidcDeviceRefused")
    assert [(e["errorCode"], e["additionalEventData"]["step"]) for e in refused] == [
        ("invalid_request", "lookup"), ("invalid_request", "approve"), ("slow_down", "deny")]
    assert all(e["userIdentity"]["userName"] == "alice" for e in refused)
    assert [e["additionalEventData"]["clientId"]
            for e in events(demo_idp, "OidcDeviceLookup")] == ["demo-cli"]
    assert len(events(demo_idp, "OidcDeviceApproved")) == 1


def test_device_flow_still_completes_within_the_budget(demo_idp: LiveIdp) -> None:
    """Control: a lookup then an approval (two attempts) still connects the device."""
    started = start(demo_idp)
    alice = User(demo_idp, "alice")
    assert 'value="approve"' in alice.post(started["user_code"].lower()).text
    assert 'id="device-done"' in alice.post(started["user_code"], "approve").text
    token = requests.post(f"{demo_idp.url}/oauth2/token", timeout=5, data={
        "grant_type": DEVICE, "device_code": started["device_code"], "client_id": "demo-cli"})
    assert token.status_code == 200 and "access_token" in token.json()
