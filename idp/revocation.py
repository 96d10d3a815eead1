"""Cutting one person off everywhere at once (``idp users revoke USER``).

A revocation is a marker in the shared store, ``idp:person-revoke:<sha256(name)>`` holding
the time of the revocation, written under the person's subject and under their username, so
every process on the store sees it at its next check, within a request:

- IdP sessions signed in before it end (the web layer's session check);
- refresh grants whose sign-in predates it fail with ``invalid_grant`` and their family is
  revoked (:func:`idp.oidc.grants.person_now`);
- temporary credentials issued before it to that person (an OIDC ``sub`` or a SAML subject in
  the session's federation claims) answer ``InvalidClientTokenId`` as AWS does for a revoked
  session's key;
- consents are deleted by the caller (it knows the clients).

The marker lives as long as anything it must refuse could (the longest refresh family,
session or credential); a new sign-in after the revocation is not refused by it (disable
the person in the directory to keep them out).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from idp.store import Store, key

MARKER_TTL = 90 * 86400
"""Seconds a revocation is remembered: longer than any refresh family (30 days by default),
IdP session (7 days at most) or temporary credential (36 hours)."""


def _marker(name: str) -> str:
    return key("person-revoke", hashlib.sha256(name.encode()).hexdigest()[:40])


def revoke_person(store: Store, names: Iterable[str], when: int,
                  ttl: int = MARKER_TTL) -> None:
    """Refuse what was granted to the person known by ``names`` (subject, username) before
    ``when`` (POSIX seconds)."""
    for name in dict.fromkeys(n for n in names if n):
        store.set(_marker(name), str(int(when)).encode(), ttl)


def marker_keys(names: Iterable[str]) -> list[str]:
    """The store keys of the revocation markers of ``names``, to read with other keys in one
    round trip (:meth:`~idp.store.Store.get_many`) and judge with :func:`revoked_in`."""
    return [_marker(name) for name in dict.fromkeys(n for n in names if n)]


def revoked_in(markers: Iterable[bytes | None], issued: int) -> bool:
    """Whether one of the markers (values of :func:`marker_keys`) is a revocation at or
    after ``issued``."""
    return any(raw is not None and issued <= int(raw) for raw in markers)


def revoked_after(store: Store, names: Iterable[str], issued: int) -> bool:
    """Whether a revocation of any of ``names`` came after ``issued`` (sign-in or issue
    time): what was issued at or before a revocation is refused.  One round trip."""
    return revoked_in(store.get_many(marker_keys(names)), issued)


def revoke_everywhere(store: Store, username: str, subject: str | None,
                      client_ids: Iterable[str], when: int) -> int:
    """``idp users revoke``: write the markers (sessions, refresh families, credentials) and
    delete the person's consents to ``client_ids``; the number of consents deleted."""
    from idp.oidc.state import digest

    revoke_person(store, (subject or "", username), when)
    if not subject:
        return 0
    return sum(bool(store.delete(key("consent", f"{c}:{digest(subject)}"))) for c in client_ids)
