"""What the provider keeps in the store: codes, refresh-token families, revocations, consents,
device codes and pending authorization requests.  Every key has a TTL; one-time values are
consumed with ``take`` (GETDEL) or claimed with ``add`` (SET NX).

Secrets handed to clients (codes, refresh tokens, device codes) are stored under their SHA-256,
so reading the store does not yield usable tokens.  Each of them is ``<fid>.<secret>``: it
names the token family it starts or continues, and its keys carry the family as a Redis hash
tag (``{fid}``), so that redeeming one and writing what replaces it is one atomic
:meth:`~idp.store.Store.swap` even on Redis Cluster: the new refresh token exists and the old
value is spent, or nothing changed (a refused write never destroys a token).  Keys:

``idp:code:{fid}:<h>`` authorization code (RFC 6749 §4.1.2: one use, short-lived) ·
``idp:codeused:{fid}:<h>`` family of a redeemed code, to revoke on reuse (RFC 6749 §4.1.2) ·
``idp:rt:{fid}:<h>`` refresh token · ``idp:rtused:{fid}:<h>`` rotated-out token → family
(RFC 9700 §4.14.2 reuse detection) · ``idp:famrev:<fid>`` revoked family ·
``idp:revoked:<jti>`` revoked access token (RFC 7009) · ``idp:at:<h>`` an opaque access
token's claims (:data:`OPAQUE_PREFIX`; deleted when revoked) · ``idp:consent:<client>:<sub>``
remembered scopes · ``idp:grantrev:<client>:<sub>`` the time the person revoked the
client's access (their refresh families started before it are refused) ·
``idp:device:{fid}:<h>`` and ``idp:usercode:<code>`` (RFC 8628 §3.2) ·
``idp:authreq:<id>`` an authorization request waiting for login or consent ·
``idp:replay:<client>:<jti>`` client assertion markers (RFC 7523 §3).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from idp.revocation import marker_keys, revoked_in
from idp.store import Store, Write, get_json, key, set_json

_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OPAQUE_PREFIX = "idp_at_"
"""Opaque access tokens are this prefix and 256 random bits, URL-safe: no ``.``, so never
taken for a JWT (two dots) or a refresh token (``<fid>.<secret>``)."""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def tagged(family: str, secret: str) -> str:
    """A secret handed to a client for a token family: ``<fid>.<secret>``."""
    if not _FAMILY.match(family):
        raise ValueError(f"bad family id `{family}`")
    return f"{family}.{secret}"


def family_of(value: str) -> str | None:
    """The family a client's code or token names, or ``None`` when it names none."""
    fam, dot, rest = value.partition(".")
    return fam if dot and rest and _FAMILY.match(fam) else None


def family_key(kind: str, value: str) -> str:
    """``idp:<kind>:{fid}:<sha256>``; a value naming no family gets a key nobody writes."""
    fam = family_of(value)
    return key(kind, f"{{{fam}}}:{digest(value)}" if fam else f"untagged:{digest(value)}")


def is_opaque(token: str) -> bool:
    """Whether ``token`` has the shape of an opaque access token (it may still be unknown)."""
    return token.startswith(OPAQUE_PREFIX) and "." not in token and len(token) <= 128


def _dump(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Spend:
    """A one-time value read for redemption, spent only when its replacement is written.

    ``key`` held ``value`` when read; ``marks`` are written with the replacement (reuse
    detection markers)."""

    key: str
    value: bytes
    marks: tuple[Write, ...] = field(default=())

    def marked(self, *marks: Write) -> Spend:
        return Spend(self.key, self.value, self.marks + marks)


@dataclass(frozen=True)
class RefreshMarks:
    """The revocation markers that bear on a refresh token, read in one round trip
    (:meth:`OidcState.refresh_marks`)."""

    family: bool
    """The token's family was revoked (reuse, logout, RFC 7009)."""
    grants: int | None
    """When the person withdrew the client's access, if they did."""
    person: tuple[bytes | None, ...]
    """The person's revocation markers (:func:`idp.revocation.marker_keys`)."""

    def grants_revoked(self, started: int) -> bool:
        """The person withdrew the client's access at or after the family ``started``."""
        return self.grants is not None and started <= self.grants

    def person_revoked(self, auth_time: int) -> bool:
        """The person was revoked at or after signing in (``idp users revoke``)."""
        return revoked_in(self.person, auth_time)


class OidcState:
    """Typed access to the provider's store keys."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # redemption: read, check, then spend and replace in one step ------------------------
    def _read(self, k: str) -> tuple[dict[str, Any], Spend] | None:
        raw = self.store.get(k)
        rec = None if raw is None else json.loads(raw)
        return (rec, Spend(k, raw)) if isinstance(rec, dict) and raw is not None else None

    def commit(self, spend: Spend | None, writes: list[Write]) -> bool:
        """Write a token response's records; with ``spend``, atomically with spending it.

        ``False`` when the value was spent meanwhile (a concurrent redemption): then nothing
        was written."""
        if spend is None:
            for k, value, ttl in writes:
                self.store.set(k, value, ttl)
            return True
        return self.store.swap(spend.key, spend.value, [*spend.marks, *writes])

    # one-time values -----------------------------------------------------------------
    def put_code(self, code: str, record: dict[str, Any], ttl: int) -> None:
        set_json(self.store, family_key("code", code), record, ttl)

    def read_code(self, code: str) -> tuple[dict[str, Any], Spend] | None:
        return self._read(family_key("code", code))

    def code_used(self, code: str, family: str, ttl: int) -> Write:
        """The marker of a redeemed code (its family), written when it is spent."""
        return family_key("codeused", code), family.encode(), max(1, ttl)

    def code_family(self, code: str) -> tuple[str, int] | None:
        """The family a redeemed code started, and the seconds its marker has left."""
        return self._marker(family_key("codeused", code))

    def _marker(self, k: str) -> tuple[str, int] | None:
        raw = self.store.get(k)
        return (raw.decode(), self.store.ttl(k) or 1) if raw else None

    # refresh-token families ------------------------------------------------------------
    def refresh_write(self, token: str, record: dict[str, Any], ttl: int) -> Write:
        """The write that stores a new refresh token (see :meth:`commit`)."""
        return family_key("rt", token), _dump(record), max(1, ttl)

    def get_refresh(self, token: str) -> dict[str, Any] | None:
        rec = get_json(self.store, family_key("rt", token))
        return rec if isinstance(rec, dict) else None

    def read_refresh(self, token: str) -> tuple[dict[str, Any], Spend] | None:
        return self._read(family_key("rt", token))

    def refresh_used(self, token: str, family: str, ttl: int) -> Write:
        """The marker of a rotated-out refresh token, written when it is spent."""
        return family_key("rtused", token), family.encode(), max(1, ttl)

    def used_refresh_family(self, token: str) -> tuple[str, int] | None:
        """The family of a rotated-out token, and the seconds its marker (the family) has
        left."""
        return self._marker(family_key("rtused", token))

    def revoke_family(self, family: str, ttl: int) -> None:
        self.store.set(key("famrev", family), b"1", max(1, ttl))

    def family_revoked(self, family: str | None) -> bool:
        return bool(family) and self.store.get(key("famrev", str(family))) is not None

    # opaque access tokens (RFC 7662 §2.2 answers from the record) ------------------------
    def opaque_write(self, token: str, claims: dict[str, Any], ttl: int) -> Write:
        """The write that stores an opaque access token's claims under its SHA-256."""
        return key("at", digest(token)), _dump(claims), max(1, ttl)

    def get_opaque(self, token: str) -> dict[str, Any] | None:
        """The claims of a live opaque access token: one store read."""
        rec = get_json(self.store, key("at", digest(token)))
        return rec if isinstance(rec, dict) else None

    def drop_opaque(self, token: str) -> bool:
        """Revoke an opaque access token (RFC 7009 §2.1): its record is gone at once."""
        return self.store.delete(key("at", digest(token)))

    def refresh_marks(self, family: str, client_id: str, subject: str,
                      username: str) -> RefreshMarks:
        """The family's, the grant's and the person's revocation markers, in one round
        trip."""
        fam, grants, *person = self.store.get_many([
            key("famrev", family), key("grantrev", f"{client_id}:{digest(subject)}"),
            *marker_keys((subject, username))])
        return RefreshMarks(fam is not None, None if grants is None else int(grants),
                            tuple(person))

    def access_revoked(self, jti: str, family: object) -> bool:
        """An access token's ``jti`` (RFC 7009) or its refresh family was revoked: both
        markers read in one round trip."""
        keys = [key("revoked", jti), *([key("famrev", str(family))] if family else [])]
        return any(v is not None for v in self.store.get_many(keys))

    def revoke_jti(self, jti: str, ttl: int) -> None:
        self.store.set(key("revoked", jti), b"1", max(1, ttl))

    def claim_assertion(self, client_id: str, jti: str, ttl: int) -> bool:
        """``False`` if this client assertion ``jti`` was seen before (replay)."""
        return self.store.add(key("replay", f"{client_id}:{digest(jti)}"), b"1", max(1, ttl))

    # consents --------------------------------------------------------------------------
    def consented(self, client_id: str, subject: str) -> set[str]:
        rec = get_json(self.store, key("consent", f"{client_id}:{digest(subject)}"))
        return set(rec) if isinstance(rec, list) else set()

    def remember_consent(self, client_id: str, subject: str, scopes: set[str], ttl: int) -> None:
        have = self.consented(client_id, subject)
        set_json(self.store, key("consent", f"{client_id}:{digest(subject)}"),
                 sorted(have | scopes), ttl)

    def forget_consent(self, client_id: str, subject: str) -> bool:
        return self.store.delete(key("consent", f"{client_id}:{digest(subject)}"))

    def revoke_grants(self, client_id: str, subject: str, when: int, ttl: int) -> None:
        """The person withdrew ``client_id``'s access at ``when``: every refresh family of
        theirs for that client started then or before is refused (RFC 7009 §2.1's "all
        tokens based on the same authorization grant", for every grant of the pair)."""
        self.store.set(key("grantrev", f"{client_id}:{digest(subject)}"),
                       str(int(when)).encode(), max(1, ttl))

    # pending authorization requests ----------------------------------------------------
    def put_authreq(self, ident: str, record: dict[str, Any], ttl: int) -> None:
        set_json(self.store, key("authreq", ident), record, ttl)

    def get_authreq(self, ident: str) -> dict[str, Any] | None:
        if not ident or len(ident) > 64:
            return None
        rec = get_json(self.store, key("authreq", ident))
        return rec if isinstance(rec, dict) else None

    def drop_authreq(self, ident: str) -> None:
        self.store.delete(key("authreq", ident))

    # device authorization (RFC 8628) ---------------------------------------------------
    def put_device(self, device_code: str, user_code: str, record: dict[str, Any],
                   ttl: int) -> None:
        k = family_key("device", device_code)
        set_json(self.store, k, record, ttl)
        self.store.set(key("usercode", user_code), k.removeprefix(key("device", "")).encode(),
                       ttl)

    def device_by_user_code(self, user_code: str) -> tuple[str, dict[str, Any]] | None:
        raw = self.store.get(key("usercode", user_code))
        if raw is None:
            return None
        rec = get_json(self.store, key("device", raw.decode()))
        return (raw.decode(), rec) if isinstance(rec, dict) else None

    def update_device(self, device_hash: str, record: dict[str, Any]) -> None:
        k = key("device", device_hash)
        ttl = self.store.ttl(k)
        if ttl:
            set_json(self.store, k, record, ttl)

    def get_device(self, device_code: str) -> dict[str, Any] | None:
        rec = get_json(self.store, family_key("device", device_code))
        return rec if isinstance(rec, dict) else None

    def read_device(self, device_code: str) -> tuple[dict[str, Any], Spend] | None:
        return self._read(family_key("device", device_code))

    def drop_device(self, device_code: str) -> bool:
        """Spend a device code that gets no tokens (denied); ``False`` if already spent."""
        return self.store.delete(family_key("device", device_code))

    def poll_too_fast(self, device_code: str, interval: int) -> bool:
        """RFC 8628 §3.5 ``slow_down``: one poll per interval."""
        return not self.store.add(key("devpoll", digest(device_code)), b"1", interval)

    def count(self, name: str, ttl: int) -> int:
        return self.store.incr(key("ratelimit", name), ttl)
