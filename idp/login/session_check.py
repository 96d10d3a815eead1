"""IdP sessions that end when access should: a revocation ends them at the next request,
a person gone from the directory or disabled there at the next directory check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp.errors import UnavailableError
from idp.login.sessions import IdpSession
from idp.revocation import revoked_after, revoked_in

if TYPE_CHECKING:
    from idp.app import Components

CHECKED = "directory_checked_at"


def check_session(comps: Components, sess: IdpSession, now: int,
                  markers: list[bytes | None] | None = None) -> str | None:
    """Why ``sess`` must end now (``PersonRevoked``, ``PersonGone``), or ``None``.

    ``markers`` are the person's revocation markers if already read with the session
    (:meth:`~idp.login.sessions.SessionManager.get_with_markers`); else they are read now.
    The directory is asked at most every ``session.directory_recheck`` seconds; a directory
    that does not answer keeps the session (the next request asks again) rather than signing
    everyone out during an outage.  The groups are refreshed on the way."""
    if revoked_in(markers, sess.auth_time) if markers is not None else revoked_after(
            comps.store, (sess.subject, sess.username), sess.auth_time):
        return "PersonRevoked"
    interval = comps.config.session.directory_recheck
    checked = int(sess.extra.get(CHECKED, sess.auth_time))
    if now - checked < interval:
        return None
    try:
        person = comps.directory.lookup(sess.username)
    except UnavailableError:
        return None
    if person is None or person.subject != sess.subject:
        return "PersonGone"
    sess.groups = list(person.groups)
    sess.extra[CHECKED] = now
    comps.sessions.save(sess)
    return None
