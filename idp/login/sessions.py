"""IdP sessions kept in the store.

A session is found by a random ID (128+ bits) carried in an HttpOnly cookie; the store holds
it under ``idp:sess:<sha256(id)>`` so that reading the store does not yield live cookies.  It
ends at the first of its idle timeout (renewed on use) and its absolute timeout
(OWASP Session Management Cheat Sheet, "Session Expiration").  A new ID is issued at every
login (session fixation, ibid. "Renew the Session ID After Any Privilege Level Change").

Each person's sessions are also listed under ``idp:sessidx:<sha256(username)>`` (the hashes,
never the IDs), so that the account page can show them and sign out the others; the list
lives as long as the longest session it names, and names of ended sessions are dropped
when it is read.  Two sign-ins of one person in the same instant may lose one name (the list
is rewritten whole): that session is then not shown and not signed out from the list, and
still ends at its own timeouts or with ``idp users revoke``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from idp.config import SessionConfig
from idp.directory import Identity
from idp.revocation import marker_keys
from idp.store import Store, Write, get_json, key, new_id

TOUCH_EVERY = 30  # seconds between idle-timeout renewals (fewer writes on busy sessions)


@dataclass
class IdpSession:
    """A signed-in person.  ``participants`` lists the SPs/clients that got something from it
    (for single logout); ``extra`` is for protocol packages."""

    id: str
    username: str
    subject: str
    groups: list[str]
    attributes: dict[str, str]
    auth_time: int
    expires_at: int
    last_seen: int
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    participants: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    mfa_time: int | None = None
    pending: str | None = None

    @property
    def mfa(self) -> bool:
        """A second factor was used in this session (RFC 8176 ``mfa``)."""
        return self.mfa_time is not None and self.pending is None

    def identity(self) -> Identity:
        return Identity(self.username, self.subject, tuple(self.groups), dict(self.attributes))

    def to_json(self) -> dict[str, Any]:
        """The stored form: every field but ``id`` (the store key is its hash).  The values
        are the session's own (not copies): the caller serialises them at once."""
        return {f.name: getattr(self, f.name) for f in _STORED}


_STORED = tuple(f for f in fields(IdpSession) if f.name != "id")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _store_key(session_id: str) -> str:
    return key("sess", _hash(session_id))


def _index_key(username: str) -> str:
    return key("sessidx", hashlib.sha256(username.encode()).hexdigest()[:40])


MAX_LISTED = 50
"""Sessions kept in a person's list (the oldest are dropped from the list, not ended)."""
MAX_REMEMBERED = 10_000
"""Sessions whose revocation marker keys a process keeps (to read them with the session)."""


class SessionManager:
    """Create, find, renew and end IdP sessions."""

    def __init__(self, store: Store, config: SessionConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._markers: dict[str, list[str]] = {}  # store key of a session -> its marker keys
        self._lock = threading.Lock()

    def create(self, identity: Identity, *, amr: list[str] | None = None,
               previous_id: str | None = None, pending: str | None = None,
               user_agent: str = "") -> IdpSession:
        """A new session (new ID); the previous one, if any, is ended.  A ``pending`` session
        (``"mfa"``: the second step is still due) signs no one in until :meth:`elevate`.
        ``user_agent`` (shortened) is kept to show the person their sessions."""
        if previous_id:
            self.destroy(previous_id)
        now = int(self.clock())
        sess = IdpSession(
            id=new_id(32), username=identity.username, subject=identity.subject,
            groups=list(identity.groups), attributes=dict(identity.attributes),
            auth_time=now, expires_at=now + self.config.absolute_timeout, last_seen=now,
            amr=amr or ["pwd"], pending=pending,
        )
        if user_agent:
            sess.extra["ua"] = user_agent[:200]
        self._write_listed(sess, now)
        return sess

    def elevate(self, sess: IdpSession, method: str, when: int) -> IdpSession:
        """The session after a second factor (``method``: its RFC 8176 value): a new ID
        (OWASP: renew the session ID after any privilege level change), ``amr`` with the
        method and ``mfa``, ``mfa_time`` set, no longer pending."""
        self.destroy(sess.id)
        amr = list(dict.fromkeys([*sess.amr, method, "mfa"]))
        data = {**sess.to_json(), "amr": amr, "mfa_time": when, "pending": None,
                "last_seen": int(self.clock())}
        new = IdpSession(id=new_id(32), **data)
        self._write_listed(new, int(self.clock()))
        return new

    def get(self, session_id: str | None) -> IdpSession | None:
        """The live session with that ID, renewing its idle timeout; ``None`` otherwise."""
        if not session_id or len(session_id) > 128:
            return None
        return self._live(session_id, get_json(self.store, _store_key(session_id)))

    def get_with_markers(self, session_id: str | None
                         ) -> tuple[IdpSession | None, list[bytes | None]]:
        """:meth:`get`, and the values of the session's person's revocation markers
        (:func:`idp.revocation.marker_keys` of its subject and username) read now.

        Both come in one round trip when this process knows the session's marker keys (it
        created the session or read it before: they follow from its subject and username,
        which never change), else in two.  The keys read are checked against the session
        found; the values are never older than this call."""
        keys = self.read_keys(session_id)
        if not keys:
            return None, []
        values = self.store.get_many(keys) if len(keys) > 1 else [self.store.get(keys[0])]
        return self.from_values(session_id or "", keys, values)

    def read_keys(self, session_id: str | None) -> list[str]:
        """The store keys :meth:`from_values` wants read for ``session_id``: the session's,
        then its person's marker keys if this process knows them; none for no valid ID.
        For a caller that reads them in a round trip it makes anyway (``get_many``,
        ``add_then_get_many``)."""
        if not session_id or len(session_id) > 128:
            return []
        skey = _store_key(session_id)
        return [skey, *self._markers.get(skey, ())]

    def from_values(self, session_id: str, keys: Sequence[str],
                    values: Sequence[bytes | None]) -> tuple[IdpSession | None,
                                                             list[bytes | None]]:
        """:meth:`get_with_markers` from the ``values`` of ``keys`` (:meth:`read_keys`) read
        now; the markers are read here when ``keys`` lacked them or named others."""
        if not keys:
            return None, []
        skey, known = keys[0], list(keys[1:])
        raw, *found = values
        sess = self._live(session_id, None if raw is None else json.loads(raw))
        if sess is None:
            self._markers.pop(skey, None)
            return None, []
        wanted = marker_keys((sess.subject, sess.username))
        if wanted != known:
            found = self.store.get_many(wanted)
            self._remember(skey, wanted)
        return sess, found

    def _remember(self, skey: str, markers: list[str]) -> None:
        """Keep a session's marker keys (bounded: the oldest go first)."""
        with self._lock:
            self._markers[skey] = markers
            while len(self._markers) > MAX_REMEMBERED:
                self._markers.pop(next(iter(self._markers)))

    def _live(self, session_id: str, data: Any) -> IdpSession | None:
        """The session from its stored form, if not past a timeout (renewing the idle one)."""
        if not isinstance(data, dict):
            return None
        now = int(self.clock())
        sess = IdpSession(id=session_id, **data)
        if now >= sess.expires_at or now - sess.last_seen >= self.config.idle_timeout:
            self.destroy(session_id)
            return None
        if now - sess.last_seen >= TOUCH_EVERY:
            sess.last_seen = now
            self._write(sess, now)
        return sess

    def save(self, sess: IdpSession) -> None:
        """Persist changes a protocol made (participants, extra)."""
        self._write(sess, int(self.clock()))

    def destroy(self, session_id: str) -> bool:
        self._markers.pop(_store_key(session_id), None)
        return self.store.delete(_store_key(session_id))

    def _write_listed(self, sess: IdpSession, now: int) -> None:
        """Write a new session and its person's list with it, in one round trip."""
        record = self._record(sess, now)
        self.store.set_many([*([record] if record else []), self._index(sess)])
        self._remember(_store_key(sess.id), marker_keys((sess.subject, sess.username)))

    def _index(self, sess: IdpSession) -> Write:
        """The write of the person's list with ``sess`` added (and the ended ones dropped)."""
        live = [h for h, _ in self._listed(sess.username)]
        hashes = [*(h for h in live if h != _hash(sess.id)), _hash(sess.id)][-MAX_LISTED:]
        return (_index_key(sess.username), _dump(hashes), max(1, self.config.absolute_timeout))

    def _listed(self, username: str) -> list[tuple[str, bytes]]:
        """The person's listed sessions still in the store, as ``(hash, stored value)``: the
        list, then every session it names in one round trip."""
        raw = self.store.get(_index_key(username))
        listed = None if raw is None else json.loads(raw)
        if not isinstance(listed, list):
            return []
        hashes = [h for h in listed if isinstance(h, str)]
        values = self.store.get_many([key("sess", h) for h in hashes])
        return [(h, v) for h, v in zip(hashes, values, strict=True) if v is not None]

    def of_person(self, username: str) -> list[tuple[str, IdpSession]]:
        """The person's live sessions as ``(hash, session)``, newest sign-in first; the
        sessions' ``id`` is empty (the store has only its hash)."""
        now = int(self.clock())
        out: list[tuple[str, IdpSession]] = []
        for h, raw in self._listed(username):
            data = json.loads(raw)
            if not isinstance(data, dict):
                continue
            sess = IdpSession(id="", **data)
            if sess.username != username or now >= sess.expires_at \
                    or now - sess.last_seen >= self.config.idle_timeout:
                continue
            out.append((h, sess))
        return sorted(out, key=lambda hs: hs[1].auth_time, reverse=True)

    @staticmethod
    def hash_of(session_id: str) -> str:
        """The name a session has in its person's list."""
        return _hash(session_id)

    def end_others(self, sess: IdpSession) -> int:
        """End every listed session of ``sess``'s person but ``sess``; how many ended."""
        mine = _hash(sess.id)
        ended = sum(self.store.delete(key("sess", h))
                    for h, _ in self.of_person(sess.username) if h != mine)
        self.store.set(*self._index(sess))
        return ended

    def _record(self, sess: IdpSession, now: int) -> Write | None:
        """The write of ``sess`` (``None`` when it has no time left)."""
        ttl = min(self.config.idle_timeout, sess.expires_at - now)
        return (_store_key(sess.id), _dump(sess.to_json()), ttl) if ttl > 0 else None

    def _write(self, sess: IdpSession, now: int) -> None:
        record = self._record(sess, now)
        if record:
            self.store.set(*record)


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
