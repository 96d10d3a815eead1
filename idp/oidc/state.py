"""What the provider keeps in the store: codes, refresh-token families, revocations, consents,
device codes and pending authorization requests.  Every key has a TTL; one-time values are
consumed with ``take`` (GETDEL) or claimed with ``add`` (SET NX).

Secrets handed to clients (codes, refresh tokens, device codes) are stored under their SHA-256,
so reading the store does not yield usable tokens.  Keys:

``idp:code:<h>`` authorization code (RFC 6749 §4.1.2: one use, short-lived) ·
``idp:codeused:<h>`` family of a redeemed code, to revoke on reuse (RFC 6749 §4.1.2) ·
``idp:rt:<h>`` refresh token · ``idp:rtused:<h>`` rotated-out token → family (RFC 9700
§4.14.2 reuse detection) · ``idp:famrev:<fid>`` revoked family · ``idp:revoked:<jti>``
revoked access token (RFC 7009) · ``idp:consent:<client>:<sub>`` remembered scopes ·
``idp:device:<h>`` and ``idp:usercode:<code>`` (RFC 8628 §3.2) · ``idp:authreq:<id>``
an authorization request waiting for login or consent · ``idp:replay:<client>:<jti>``
client assertion markers (RFC 7523 §3).
"""

from __future__ import annotations

import hashlib
from typing import Any

from idp.store import Store, get_json, key, set_json, take_json


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class OidcState:
    """Typed access to the provider's store keys."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # one-time values -----------------------------------------------------------------
    def put_code(self, code: str, record: dict[str, Any], ttl: int) -> None:
        set_json(self.store, key("code", digest(code)), record, ttl)

    def take_code(self, code: str) -> dict[str, Any] | None:
        rec = take_json(self.store, key("code", digest(code)))
        return rec if isinstance(rec, dict) else None

    def mark_code_used(self, code: str, family: str, ttl: int) -> None:
        self.store.set(key("codeused", digest(code)), family.encode(), ttl)

    def code_family(self, code: str) -> str | None:
        raw = self.store.get(key("codeused", digest(code)))
        return raw.decode() if raw else None

    # refresh-token families ------------------------------------------------------------
    def put_refresh(self, token: str, record: dict[str, Any], ttl: int) -> None:
        set_json(self.store, key("rt", digest(token)), record, max(1, ttl))

    def get_refresh(self, token: str) -> dict[str, Any] | None:
        rec = get_json(self.store, key("rt", digest(token)))
        return rec if isinstance(rec, dict) else None

    def take_refresh(self, token: str) -> dict[str, Any] | None:
        rec = take_json(self.store, key("rt", digest(token)))
        return rec if isinstance(rec, dict) else None

    def mark_refresh_used(self, token: str, family: str, ttl: int) -> None:
        self.store.set(key("rtused", digest(token)), family.encode(), max(1, ttl))

    def used_refresh_family(self, token: str) -> str | None:
        raw = self.store.get(key("rtused", digest(token)))
        return raw.decode() if raw else None

    def revoke_family(self, family: str, ttl: int) -> None:
        self.store.set(key("famrev", family), b"1", max(1, ttl))

    def family_revoked(self, family: str | None) -> bool:
        return bool(family) and self.store.get(key("famrev", str(family))) is not None

    def revoke_jti(self, jti: str, ttl: int) -> None:
        self.store.set(key("revoked", jti), b"1", max(1, ttl))

    def jti_revoked(self, jti: str) -> bool:
        return self.store.get(key("revoked", jti)) is not None

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
        set_json(self.store, key("device", digest(device_code)), record, ttl)
        self.store.set(key("usercode", user_code), digest(device_code).encode(), ttl)

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
        rec = get_json(self.store, key("device", digest(device_code)))
        return rec if isinstance(rec, dict) else None

    def take_device(self, device_code: str) -> dict[str, Any] | None:
        rec = take_json(self.store, key("device", digest(device_code)))
        if isinstance(rec, dict):
            self.store.delete(key("usercode", str(rec.get("user_code", ""))))
            return rec
        return None

    def poll_too_fast(self, device_code: str, interval: int) -> bool:
        """RFC 8628 §3.5 ``slow_down``: one poll per interval."""
        return not self.store.add(key("devpoll", digest(device_code)), b"1", interval)

    def count(self, name: str, ttl: int) -> int:
        return self.store.incr(key("ratelimit", name), ttl)
