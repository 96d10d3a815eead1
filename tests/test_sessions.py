"""IdP sessions: idle and absolute timeouts, renewal, hashed store keys (pinned clock)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from idp.config import SessionConfig
from idp.directory import Identity
from idp.login import sessions
from idp.login.sessions import TOUCH_EVERY, SessionManager, _store_key
from idp.revocation import marker_keys, revoke_person, revoked_in
from idp.store.memory import MemoryStore

ALICE = Identity("alice", "sub-1", ("admins",), {"email": "alice@example.org"})


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager(clock: Clock) -> SessionManager:
    store = MemoryStore(clock=clock)
    return SessionManager(store, SessionConfig(idle_timeout=600, absolute_timeout=3600), clock)


def test_session_ends_after_idle_timeout(manager: SessionManager, clock: Clock) -> None:
    sess = manager.create(ALICE)
    clock.now += 599
    assert manager.get(sess.id) is not None
    clock.now += 600 + 1
    assert manager.get(sess.id) is None


def test_use_renews_idle_timeout(manager: SessionManager, clock: Clock) -> None:
    sess = manager.create(ALICE)
    for _ in range(5):  # 5 × 500 s > idle timeout, but each use renews it
        clock.now += 500
        assert manager.get(sess.id) is not None


def test_absolute_timeout_wins_over_renewal(manager: SessionManager, clock: Clock) -> None:
    sess = manager.create(ALICE)
    while clock.now < sess.expires_at - 300:
        clock.now += 300
        assert manager.get(sess.id) is not None
    clock.now = sess.expires_at
    assert manager.get(sess.id) is None


def test_renewal_writes_at_most_every_touch_interval(manager: SessionManager,
                                                     clock: Clock) -> None:
    sess = manager.create(ALICE)
    clock.now += TOUCH_EVERY - 1
    assert manager.get(sess.id).last_seen == sess.last_seen  # type: ignore[union-attr]
    clock.now += 1
    assert manager.get(sess.id).last_seen == int(clock.now)  # type: ignore[union-attr]


def test_store_key_is_a_hash_of_the_session_id(manager: SessionManager) -> None:
    sess = manager.create(ALICE)
    store = manager.store
    assert isinstance(store, MemoryStore)
    assert not any(sess.id in k for k in store._data)


def test_new_login_ends_the_previous_session(manager: SessionManager) -> None:
    first = manager.create(ALICE)
    second = manager.create(ALICE, previous_id=first.id)
    assert manager.get(first.id) is None and manager.get(second.id) is not None
    assert len(second.id) >= 43  # 256 bits, base64url


@pytest.mark.parametrize("sid", [
    pytest.param("", id="empty-cookie"),
    pytest.param("x" * 5000, id="over-long-cookie"),
    pytest.param("not-a-session", id="unknown-id"),
])
def test_bad_session_ids_find_nothing(manager: SessionManager, sid: str) -> None:
    assert manager.get(sid) is None


def test_saved_session_reads_back_with_every_field(manager: SessionManager) -> None:
    """What a protocol adds (participants, nested ``extra``) survives the store, and the
    stored form is every field but the ID (the store key is its hash)."""
    from dataclasses import fields

    from idp.login.sessions import IdpSession

    sess = manager.create(ALICE, amr=["pwd", "otp"])
    sess.participants.append("https://sp.example/metadata")
    sess.extra["saml"] = {"https://sp.example/metadata": {"name_id": "n", "session_index": "_i"}}
    manager.save(sess)
    again = manager.get(sess.id)
    assert again == sess
    assert set(sess.to_json()) == {f.name for f in fields(IdpSession)} - {"id"}


BOB = Identity("bob", "sub-2", (), {})


def test_person_index_lists_live_sessions_newest_first_with_user_agent(
        manager: SessionManager, clock: Clock) -> None:
    first = manager.create(ALICE, user_agent="Laptop/1.0")
    clock.now += 5
    second = manager.create(ALICE, user_agent="Phone/2.0")
    manager.create(BOB)
    listed = manager.of_person("alice")
    assert [h for h, _ in listed] == [manager.hash_of(second.id), manager.hash_of(first.id)]
    assert [s.extra["ua"] for _, s in listed] == ["Phone/2.0", "Laptop/1.0"]
    assert all(first.id not in str(v) for v in manager.store._data.values())  # type: ignore[attr-defined]


def test_person_index_drops_ended_and_idle_sessions(manager: SessionManager,
                                                    clock: Clock) -> None:
    gone = manager.create(ALICE)
    manager.destroy(gone.id)
    idle = manager.create(ALICE)
    clock.now += 601
    live = manager.create(ALICE)
    assert [h for h, _ in manager.of_person("alice")] == [manager.hash_of(live.id)]
    assert idle.id != live.id


def test_end_others_keeps_this_session_and_spares_other_people(manager: SessionManager) -> None:
    mine, other = manager.create(ALICE), manager.create(ALICE)
    bobs = manager.create(BOB)
    assert manager.end_others(mine) == 1
    assert manager.get(other.id) is None
    assert manager.get(mine.id) is not None and manager.get(bobs.id) is not None
    assert [h for h, _ in manager.of_person("alice")] == [manager.hash_of(mine.id)]


def test_elevated_session_replaces_the_pending_one_in_the_list(manager: SessionManager) -> None:
    pending = manager.create(ALICE, pending="mfa")
    elevated = manager.elevate(pending, "otp", 1)
    assert [h for h, _ in manager.of_person("alice")] == [manager.hash_of(elevated.id)]


class CountingStore(MemoryStore):
    """A memory store that counts its reads (``get`` and ``get_many`` are one round trip
    each on Redis)."""

    reads = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return super().get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.reads += 1
        return super().get_many(keys)


@pytest.fixture
def counted(clock: Clock) -> tuple[CountingStore, SessionManager]:
    store = CountingStore(clock=clock)
    config = SessionConfig(idle_timeout=600, absolute_timeout=3600)
    return store, SessionManager(store, config, clock)


def test_revocation_after_sign_in_is_read_with_a_known_session_in_one_round_trip(
        counted: tuple[CountingStore, SessionManager], clock: Clock) -> None:
    store, manager = counted
    sess = manager.create(ALICE)
    sess_got, markers = manager.get_with_markers(sess.id)
    assert sess_got == sess and not revoked_in(markers, sess.auth_time)
    clock.now += 1
    revoke_person(store, ("sub-1", "alice"), int(clock.now))
    store.reads = 0
    sess_got, markers = manager.get_with_markers(sess.id)
    assert store.reads == 1  # the session and its markers together
    assert sess_got is not None and revoked_in(markers, sess.auth_time)


def test_another_process_reads_the_markers_after_the_session_then_with_it(
        counted: tuple[CountingStore, SessionManager], clock: Clock) -> None:
    store, manager = counted
    sess = manager.create(ALICE)
    revoke_person(store, ("alice",), int(clock.now))
    other = SessionManager(store, manager.config, clock)  # has not seen the session
    for trips in (2, 1):
        store.reads = 0
        sess_got, markers = other.get_with_markers(sess.id)
        assert store.reads == trips
        assert sess_got is not None and revoked_in(markers, sess.auth_time)


def test_remembered_marker_keys_are_checked_against_the_session_found(
        counted: tuple[CountingStore, SessionManager], clock: Clock) -> None:
    """Keys remembered for a session ID (here: another person's) never stand in for the
    keys of the session the store holds: a revocation of its person is still seen."""
    store, manager = counted
    sess = manager.create(ALICE)
    manager._markers[_store_key(sess.id)] = marker_keys(("sub-2", "bob"))
    revoke_person(store, ("sub-1",), int(clock.now))
    sess_got, markers = manager.get_with_markers(sess.id)
    assert sess_got is not None and revoked_in(markers, sess.auth_time)
    assert manager._markers[_store_key(sess.id)] == marker_keys(("sub-1", "alice"))


def test_ended_or_unknown_sessions_find_nothing_and_are_forgotten(
        counted: tuple[CountingStore, SessionManager], clock: Clock) -> None:
    _, manager = counted
    sess = manager.create(ALICE)
    assert manager.get_with_markers("not-a-session") == (None, [])
    assert manager.get_with_markers("x" * 5000) == (None, [])
    clock.now += 601  # idle timeout
    assert manager.get_with_markers(sess.id) == (None, [])
    assert _store_key(sess.id) not in manager._markers


def test_remembered_marker_keys_are_bounded(counted: tuple[CountingStore, SessionManager],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, manager = counted
    monkeypatch.setattr(sessions, "MAX_REMEMBERED", 2)
    first, *rest = [manager.create(ALICE) for _ in range(3)]
    assert len(manager._markers) == 2 and _store_key(first.id) not in manager._markers
    assert all(_store_key(s.id) in manager._markers for s in rest)
