"""Who an SSO access token speaks for.  The token (RFC 9068) carries ``sub`` and its
refresh-token family (``fid``); the portal needs the person's groups and attributes to apply
the role mapping, so ``CreateToken`` keeps the grant's person under ``idp:ssosess:<fid>`` for
the life of the family.  ``Logout`` drops it with the family."""

from __future__ import annotations

from typing import Any

from idp.store import Store, get_json, key, set_json


class SsoSessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def remember(self, family: str, grantee: dict[str, Any], ttl: int) -> None:
        if ttl > 0:
            set_json(self.store, key("ssosess", family), grantee, ttl)

    def get(self, family: str) -> dict[str, Any] | None:
        if not family or len(family) > 128:
            return None
        rec = get_json(self.store, key("ssosess", family))
        return rec if isinstance(rec, dict) else None

    def forget(self, family: str) -> None:
        self.store.delete(key("ssosess", family))
