"""Per-request helpers shared by the blueprints."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from flask import current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from idp import logs
from idp.audit import RequestInfo
from idp.login.csrf import CSRF_COOKIE, csrf_token
from idp.login.session_check import check_session

if TYPE_CHECKING:
    from idp.app import Components
    from idp.login.sessions import IdpSession


PASSWORD_PATH = "/account/password"


def components() -> Components:
    comps: Components = current_app.extensions["idp"]
    return comps


def request_info() -> RequestInfo:
    """Source IP, user agent and a request ID (reused for the whole request)."""
    info: RequestInfo | None = g.get("idp_request_info")
    if info is None:
        info = RequestInfo(
            source_ip=request.remote_addr or "",
            user_agent=request.headers.get("User-Agent", ""),
            request_id=logs.request_id(request.environ),
        )
        g.idp_request_info = info
    return info


def any_session() -> IdpSession | None:
    """The browser's IdP session, also one whose second step is still due (looked up once
    per request, with the person's revocation markers: see :func:`keep_session`)."""
    if "idp_session" not in g:
        comps = components()
        keep_session(*comps.sessions.get_with_markers(
            request.cookies.get(comps.config.session.cookie_name)))
    sess: IdpSession | None = g.idp_session
    return sess


def keep_session(sess: IdpSession | None, markers: list[bytes | None]) -> None:
    """Make ``sess`` (read now, with its person's revocation ``markers``) this request's IdP
    session, as :func:`checked_session` leaves it."""
    g.idp_session = sess if sess is None or sess.pending is not None else \
        checked_session(components(), sess, markers, request_info())


def checked_session(comps: Components, sess: IdpSession, markers: list[bytes | None],
                    info: RequestInfo) -> IdpSession | None:
    """``sess`` (signed in, read now with its person's revocation ``markers``), or ``None``
    if it ended now: a session whose person was revoked (``idp users revoke``) since
    signing in is ended at once, one whose person is gone from the directory or disabled
    there at the next check (``session.directory_recheck`` seconds apart, 5 minutes by
    default).  No Flask: :mod:`idp.web.saml_fast` calls it too."""
    ended = check_session(comps, sess, int(time.time()), markers)
    if ended is None:
        return sess
    comps.sessions.destroy(sess.id)
    comps.auditor.emit("Logout", info, user=sess.username, event_type="AwsConsoleSignIn",
                       additional={"reason": ended})
    return None


def session_read_by_view() -> bool:
    """Whether this request's view reads the session itself, in a round trip it makes anyway
    (``/saml/sso`` with an AuthnRequest: :class:`idp.web.saml.RequestSession`), so the
    ``before_request`` hooks leave it alone."""
    return request.endpoint == "saml.sso" and resume_param() is None


def resume_param() -> str | None:
    """``?resume=`` of this request; the query string (which carries a whole AuthnRequest
    on ``/saml/sso``) is parsed only if the name appears in it."""
    return request.args.get("resume") if b"resume" in request.query_string else None


def must_change_redirect(sess: IdpSession | None) -> Response | None:
    """A person whose password must be changed (reset by an administrator, or expired) gets
    only the change form and sign-out until it is changed: where to send them instead."""
    if sess is None or not sess.extra.get("must_change"):
        return None
    target = request.full_path.rstrip("?") if request.method == "GET" else "/account"
    # encoded: the target's own query (a signed AuthnRequest: SAMLRequest, RelayState,
    # SigAlg, Signature) must come back whole, not as parameters of the change form
    return redirect(f"{PASSWORD_PATH}?{urlencode({'next': target})}"  # type: ignore[return-value]
                    if target != "/account" else PASSWORD_PATH)


def current_session() -> IdpSession | None:
    """The signed-in person's IdP session, or ``None``: a session waiting for its second
    factor signs no one in."""
    sess = any_session()
    return sess if sess is not None and sess.pending is None else None


def set_current_session(sess: IdpSession | None) -> None:
    """The session this request continues with (after a second factor renewed its ID)."""
    g.idp_session = sess


def mfa_redirect(next_path: str) -> Response:
    """Send the browser to the second step (or a step-up), to come back to ``next_path``."""
    return redirect("/login/mfa?" + urlencode({"next": safe_next(next_path)}))


def safe_next(target: str | None, default: str = "/account") -> str:
    """A local path to go to after login, or ``default``: never another origin.

    Refuses absolute URLs, scheme-relative ``//host``, ``/\\host`` (browsers read ``\\`` as
    ``/``), ``https:evil`` and control characters (OWASP Unvalidated Redirects Cheat Sheet).
    """
    if not target or len(target) > 2048:
        return default
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return default
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def login_redirect(next_path: str, *, reauth: bool = False) -> Response:
    """Send the browser to the login page, to come back to ``next_path`` afterwards."""
    args = {"next": safe_next(next_path)}
    if reauth:
        args["reauth"] = "1"
    return redirect(url_for("login.login") + "?" + urlencode(args))


def form_csrf_token() -> str:
    """The CSRF token for forms of this page (the cookie is set by ``security``)."""
    binding = g.get("idp_csrf_binding") or request.cookies.get(CSRF_COOKIE) or ""
    return csrf_token(components().secret, binding)
