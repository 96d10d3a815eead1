"""IdP sessions kept in the store.

A session is found by a random ID (128+ bits) carried in an HttpOnly cookie; the store holds
it under ``idp:sess:<sha256(id)>`` so that reading the store does not yield live cookies.  It
ends at the first of its idle timeout (renewed on use) and its absolute timeout
(OWASP Session Management Cheat Sheet, "Session Expiration").  A new ID is issued at every
login (session fixation, ibid. "Renew the Session ID After Any Privilege Level Change").
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from idp.config import SessionConfig
from idp.directory import Identity
from idp.store import Store, get_json, key, new_id, set_json

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


def _store_key(session_id: str) -> str:
    return key("sess", hashlib.sha256(session_id.encode()).hexdigest())


class SessionManager:
    """Create, find, renew and end IdP sessions."""

    def __init__(self, store: Store, config: SessionConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def create(self, identity: Identity, *, amr: list[str] | None = None,
               previous_id: str | None = None, pending: str | None = None) -> IdpSession:
        """A new session (new ID); the previous one, if any, is ended.  A ``pending`` session
        (``"mfa"``: the second step is still due) signs no one in until :meth:`elevate`."""
        if previous_id:
            self.destroy(previous_id)
        now = int(self.clock())
        sess = IdpSession(
            id=new_id(32), username=identity.username, subject=identity.subject,
            groups=list(identity.groups), attributes=dict(identity.attributes),
            auth_time=now, expires_at=now + self.config.absolute_timeout, last_seen=now,
            amr=amr or ["pwd"], pending=pending,
        )
        self._write(sess, now)
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
        self._write(new, int(self.clock()))
        return new

    def get(self, session_id: str | None) -> IdpSession | None:
        """The live session with that ID, renewing its idle timeout; ``None`` otherwise."""
        if not session_id or len(session_id) > 128:
            return None
        data = get_json(self.store, _store_key(session_id))
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
        return self.store.delete(_store_key(session_id))

    def _write(self, sess: IdpSession, now: int) -> None:
        ttl = min(self.config.idle_timeout, sess.expires_at - now)
        if ttl > 0:
            set_json(self.store, _store_key(sess.id), sess.to_json(), ttl)
