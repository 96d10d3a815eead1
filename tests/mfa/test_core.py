"""The MFA core without HTTP: TOTP (RFC 6238), recovery codes, sealed secrets, durable
enrolments and the wrong-code counters."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp
import pytest

from idp.audit import Auditor, MemorySink, RequestInfo
from idp.config import MfaConfig
from idp.mfa import recovery, totp
from idp.mfa.crypto import SecretBox, SecretBoxError
from idp.mfa.service import MfaError, MfaLocked, MfaService
from idp.mfa.storage import EnrolmentStore
from idp.store.memory import MemoryStore

KEY_A = "a" * 32
KEY_B = "b" * 40
REQ = RequestInfo("203.0.113.9", "pytest")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


def make(tmp_path: Path, clock: Clock, sink: MemorySink, *, keys: list[str] | None = None,
         store: MemoryStore | None = None, **cfg: object) -> MfaService:
    config = MfaConfig.model_validate(cfg)
    return MfaService(config, EnrolmentStore(tmp_path / "mfa"), store or MemoryStore(clock),
                      Auditor(sink), SecretBox(keys or [KEY_A]), clock=clock)


def enrol(svc: MfaService, clock: Clock, user: str = "alice") -> str:
    pending = svc.begin_totp(user)
    svc.confirm_totp(user, pending.id, totp.code_at(pending.secret, clock.now), "phone", REQ)
    clock.now += totp.STEP  # the enrolling code's step is spent
    return pending.secret


def events(sink: MemorySink, name: str) -> list[dict[str, object]]:
    return [r for r in sink.records if r["eventName"] == name]


# -- TOTP ----------------------------------------------------------------------------------

def test_totp_matches_pyotp_rfc6238_vector() -> None:
    # RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits); our 6-digit code is its tail
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert pyotp.TOTP(secret, digits=8).at(59) == "94287082"
    assert totp.code_at(secret, 59) == "287082"
    assert totp.match(secret, "287082", 59) == 1


@pytest.mark.parametrize("offset, ok", [
    pytest.param(-totp.STEP, True, id="one-step-early-accepted"),
    pytest.param(totp.STEP, True, id="one-step-late-accepted"),
    pytest.param(-2 * totp.STEP, False, id="two-steps-early-refused"),
    pytest.param(2 * totp.STEP, False, id="two-steps-late-refused"),
])
def test_totp_window_is_one_step_each_side(offset: int, ok: bool) -> None:
    secret = totp.new_secret()
    now = 1_800_000_015.0
    assert (totp.match(secret, totp.code_at(secret, now + offset), now) is not None) is ok


@pytest.mark.parametrize("code", [
    pytest.param("", id="empty"), pytest.param("12345", id="too-short"),
    pytest.param("1234567", id="too-long"), pytest.param("١٢٣٤٥٦", id="non-ascii-digits"),
    pytest.param("12 456", id="space-inside"),
])
def test_totp_malformed_codes_never_match(code: str) -> None:
    assert totp.match(totp.new_secret(), code, 1_800_000_000) is None


def test_enrolment_needs_the_current_code_and_shows_qr(tmp_path: Path, clock: Clock,
                                                      sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    pending = svc.begin_totp("alice")
    assert pending.uri.startswith("otpauth://totp/idp:alice?secret=" + pending.secret)
    assert pending.qr_svg.startswith("<svg")
    with pytest.raises(MfaError):
        svc.confirm_totp("alice", pending.id, "000000" if totp.code_at(
            pending.secret, clock.now) != "000000" else "111111", "", REQ)
    svc.confirm_totp("alice", pending.id, totp.code_at(pending.secret, clock.now), "", REQ)
    [factor] = svc.enrolment("alice").factors
    assert factor.name == "Authenticator 1" and factor.kind == "totp"
    assert [e.get("errorCode") for e in events(sink, "MfaEnrol")] == ["InvalidCode", None]


def test_enrolling_code_cannot_be_used_again_to_sign_in(tmp_path: Path, clock: Clock,
                                                       sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    pending = svc.begin_totp("alice")
    code = totp.code_at(pending.secret, clock.now)
    svc.confirm_totp("alice", pending.id, code, "", REQ)
    with pytest.raises(MfaError):
        svc.verify("alice", "totp", code, REQ)


def test_totp_code_accepted_once_replay_refused(tmp_path: Path, clock: Clock,
                                               sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    secret = enrol(svc, clock)
    code = totp.code_at(secret, clock.now)
    ok = svc.verify("alice", "totp", code, REQ)
    assert ok.amr == "otp" and ok.at == int(clock.now)
    with pytest.raises(MfaError):
        svc.verify("alice", "totp", code, REQ)
    assert events(sink, "MfaVerify")[-1]["errorCode"] == "ReplayedCode"


def test_replay_marker_outlives_the_window(tmp_path: Path, clock: Clock,
                                          sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    secret = enrol(svc, clock)
    code = totp.code_at(secret, clock.now)
    svc.verify("alice", "totp", code, REQ)
    clock.now += totp.STEP  # still inside the ±1 window of the code's step
    with pytest.raises(MfaError):
        svc.verify("alice", "totp", code, REQ)


def test_wrong_code_refused_and_audited(tmp_path: Path, clock: Clock, sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    secret = enrol(svc, clock)
    wrong = f"{(int(totp.code_at(secret, clock.now)) + 1) % 1_000_000:06d}"
    with pytest.raises(MfaError):
        svc.verify("alice", "totp", wrong, REQ)
    rec = events(sink, "MfaVerify")[-1]
    assert rec["errorCode"] == "InvalidCode"
    assert wrong not in json.dumps(sink.records)


def test_person_without_factor_is_refused(tmp_path: Path, clock: Clock, sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    with pytest.raises(MfaError):
        svc.verify("carol", "totp", "123456", REQ)


# -- lockout -------------------------------------------------------------------------------

def wrong_code(secret: str, now: float) -> str:
    near = {totp.code_at(secret, now + d) for d in (-30, 0, 30)}
    return next(c for c in (f"{i:06d}" for i in range(10)) if c not in near)


def test_lockout_after_factor_failures_refuses_even_the_right_code(
        tmp_path: Path, clock: Clock, sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink, factor_failures=3, lockout_window=600)
    secret = enrol(svc, clock)
    for _ in range(3):
        with pytest.raises(MfaError):
            svc.verify("alice", "totp", wrong_code(secret, clock.now), REQ)
    assert len(events(sink, "MfaLockout")) == 1
    with pytest.raises(MfaLocked) as info:
        svc.verify("alice", "totp", totp.code_at(secret, clock.now), REQ)
    assert 0 < info.value.retry_after <= 600
    assert events(sink, "MfaVerify")[-1]["errorCode"] == "TooManyAttempts"


def test_lockout_ends_with_its_window(tmp_path: Path, clock: Clock, sink: MemorySink) -> None:
    store = MemoryStore(clock)
    svc = make(tmp_path, clock, sink, store=store, factor_failures=2, lockout_window=60)
    secret = enrol(svc, clock)
    for _ in range(2):
        with pytest.raises(MfaError):
            svc.verify("alice", "totp", wrong_code(secret, clock.now), REQ)
    clock.now += 61
    assert svc.verify("alice", "totp", totp.code_at(secret, clock.now), REQ).kind == "totp"


def test_lockout_of_codes_leaves_recovery_codes_open(tmp_path: Path, clock: Clock,
                                                     sink: MemorySink) -> None:
    """Whoever locks the guessable factors cannot lock the owner out of every factor."""
    svc = make(tmp_path, clock, sink, factor_failures=2, person_failures=2)
    secret = enrol(svc, clock)
    codes = svc.regenerate_recovery("alice", REQ)
    for _ in range(2):
        with pytest.raises(MfaError):
            svc.verify("alice", "totp", wrong_code(secret, clock.now), REQ)
    with pytest.raises(MfaLocked):
        svc.verify("alice", "totp", totp.code_at(secret, clock.now), REQ)
    for _ in range(5):
        with pytest.raises(MfaError):
            svc.verify("alice", "recovery", "00000-00000", REQ)
    assert svc.verify("alice", "recovery", codes[0], REQ).kind == "recovery"


def test_person_counter_spans_authenticators(tmp_path: Path, clock: Clock,
                                             sink: MemorySink) -> None:
    """Two authenticators do not double the guesses: the person's count covers both."""
    svc = make(tmp_path, clock, sink, factor_failures=10, person_failures=3)
    s1 = enrol(svc, clock)
    s2 = enrol(svc, clock)
    bad = next(c for c in (f"{i:06d}" for i in range(100)) if c != wrong_code(s1, clock.now)
               and totp.match(s1, c, clock.now) is None and totp.match(s2, c, clock.now) is None)
    for _ in range(3):
        with pytest.raises(MfaError):
            svc.verify("alice", "totp", bad, REQ)
    with pytest.raises(MfaLocked):
        svc.verify("alice", "totp", totp.code_at(s2, clock.now), REQ)


def test_lockout_of_one_person_leaves_others_alone(tmp_path: Path, clock: Clock,
                                                   sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink, factor_failures=1)
    sa = enrol(svc, clock, "alice")
    sb = enrol(svc, clock, "bob")
    with pytest.raises(MfaError):
        svc.verify("alice", "totp", wrong_code(sa, clock.now), REQ)
    assert svc.verify("bob", "totp", totp.code_at(sb, clock.now), REQ).kind == "totp"


# -- recovery codes ------------------------------------------------------------------------

def test_recovery_codes_ten_hashed_single_use(tmp_path: Path, clock: Clock,
                                             sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    enrol(svc, clock)
    codes = svc.regenerate_recovery("alice", REQ)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = (tmp_path / "mfa").glob("*.json")
    text = "".join(p.read_text() for p in stored)
    assert "$argon2id$" in text and not any(c.replace("-", "") in text for c in codes)
    assert svc.verify("alice", "recovery", codes[3].upper().replace("-", " "), REQ)
    with pytest.raises(MfaError):
        svc.verify("alice", "recovery", codes[3], REQ)
    assert len(svc.enrolment("alice").recovery) == 9


def test_regenerated_recovery_codes_replace_the_old_ones(tmp_path: Path, clock: Clock,
                                                        sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    enrol(svc, clock)
    old = svc.regenerate_recovery("alice", REQ)
    new = svc.regenerate_recovery("alice", REQ)
    with pytest.raises(MfaError):
        svc.verify("alice", "recovery", old[0], REQ)
    assert svc.verify("alice", "recovery", new[0], REQ)


@pytest.mark.parametrize("code", [
    pytest.param("", id="empty"), pytest.param("abcde-fghij-k", id="eleven-chars"),
    pytest.param("uuuuu-uuuuu", id="letter-outside-alphabet"),
])
def test_recovery_normalize_refuses_malformed(code: str) -> None:
    assert recovery.normalize(code) is None


# -- secrets at rest -----------------------------------------------------------------------

def test_secrets_are_sealed_in_the_enrolment_file(tmp_path: Path, clock: Clock,
                                                  sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    secret = enrol(svc, clock)
    [path] = (tmp_path / "mfa").glob("*.json")
    assert secret not in path.read_text() and "alice" in path.read_text()
    assert "alice" not in path.name
    assert path.stat().st_mode & 0o777 == 0o600


def test_key_rotation_old_key_still_decrypts_then_rekey(tmp_path: Path, clock: Clock,
                                                        sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink, keys=[KEY_A])
    secret = enrol(svc, clock)
    rotated = make(tmp_path, clock, sink, keys=[KEY_B, KEY_A])
    assert rotated.verify("alice", "totp", totp.code_at(secret, clock.now), REQ)
    clock.now += 2 * totp.STEP
    assert rotated.rekey() == 0  # the verify above already resealed it under the new key
    only_new = make(tmp_path, clock, sink, keys=[KEY_B])
    assert only_new.verify("alice", "totp", totp.code_at(secret, clock.now), REQ)


def test_rekey_reseals_every_secret(tmp_path: Path, clock: Clock, sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink, keys=[KEY_A])
    enrol(svc, clock, "alice")
    enrol(svc, clock, "bob")
    assert make(tmp_path, clock, sink, keys=[KEY_B, KEY_A]).rekey() == 2
    with pytest.raises(SecretBoxError):
        make(tmp_path, clock, sink, keys=[KEY_A]).verify("alice", "totp", "123456", REQ)


def test_secret_copied_to_another_person_does_not_decrypt(tmp_path: Path, clock: Clock,
                                                          sink: MemorySink) -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal(b"JBSWY3DPEHPK3PXP", "alice:f1")
    assert box.open(sealed, "alice:f1") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretBoxError):
        box.open(sealed, "mallory:f1")


def test_enrolments_survive_a_new_process(tmp_path: Path, clock: Clock,
                                          sink: MemorySink) -> None:
    """Durable: a new service on a new (empty) store still knows the factor."""
    svc = make(tmp_path, clock, sink)
    secret = enrol(svc, clock)
    fresh = make(tmp_path, clock, sink, store=MemoryStore(clock))
    assert fresh.verify("alice", "totp", totp.code_at(secret, clock.now), REQ)


# -- management ----------------------------------------------------------------------------

def test_rename_remove_reset_are_audited(tmp_path: Path, clock: Clock, sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    enrol(svc, clock)
    enrol(svc, clock)
    svc.regenerate_recovery("alice", REQ)
    f1, f2 = svc.enrolment("alice").factors
    svc.rename("alice", f1.id, "  work\x00phone  ", REQ)
    assert svc.enrolment("alice").factors[0].name == "workphone"
    svc.remove("alice", f1.id, REQ)
    assert [f.id for f in svc.enrolment("alice").factors] == [f2.id]
    assert svc.reset("alice", REQ, actor="root") == 1
    assert not svc.enrolment("alice").factors and not svc.enrolment("alice").recovery
    assert [r["eventName"] for r in sink.records if r["eventName"] in {
        "MfaRename", "MfaRemove", "MfaReset"}] == ["MfaRename", "MfaRemove", "MfaReset"]


def test_removing_last_factor_drops_recovery_codes(tmp_path: Path, clock: Clock,
                                                   sink: MemorySink) -> None:
    svc = make(tmp_path, clock, sink)
    enrol(svc, clock)
    svc.regenerate_recovery("alice", REQ)
    svc.remove("alice", svc.enrolment("alice").factors[0].id, REQ)
    assert svc.methods(svc.enrolment("alice")) == []
