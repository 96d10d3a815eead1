"""The console parts of ``/account``: my applications (SAML service providers that accept an
IdP-initiated sign-in, OIDC clients I consented to, with revoke), my AWS roles (one click to
the access portal's credentials) and my IdP sessions (sign out the others).

Every change is a POST with the form's CSRF token, and audited.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.login.sessions import IdpSession
from idp.sso.credentials import Person
from idp.web import security
from idp.web.context import components, current_session, login_redirect, request_info

bp = Blueprint("account_console", __name__)


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def applications(sess: IdpSession) -> dict[str, Any]:
    """SAML SPs open to IdP-initiated sign-in (SAML Profiles §4.1.5) and the OIDC clients
    this person consented to (their remembered scopes)."""
    comps = components()
    saml = comps.extras.get("saml")
    sps = sorted(sp.entity_id for sp in saml.sps.values() if saml.options(sp).idp_initiated) \
        if saml is not None else []
    provider = comps.extras.get("oidc")
    clients: list[dict[str, Any]] = []
    if provider is not None:
        for client in provider.core.clients:
            scopes = provider.core.state.consented(client.client_id, sess.subject)
            if scopes:
                clients.append({"id": client.client_id, "name": client.name,
                                "scopes": sorted(scopes)})
    return {"saml_sps": sps, "oidc_clients": clients}


def aws_roles(sess: IdpSession) -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    """``(account, alias, [(role name, role ARN)])`` as the access portal lists them."""
    portal = components().extras.get("sso_portal")
    if portal is None:
        return []
    person = Person(sess.username, sess.subject, tuple(sess.groups), dict(sess.attributes),
                    tuple(sess.amr))
    model = portal.model
    return [(acct, model.accounts[acct].alias if acct in model.accounts else None, roles)
            for acct, roles in portal.accounts(person).items()]


def sessions(sess: IdpSession) -> list[dict[str, Any]]:
    """The person's live IdP sessions, this one marked."""
    mine = components().sessions.hash_of(sess.id)
    return [{"current": h == mine, "created": _when(s.auth_time),
             "last_seen": _when(s.last_seen), "user_agent": s.extra.get("ua") or "unknown",
             "mfa": s.mfa}
            for h, s in components().sessions.of_person(sess.username)]


def console(sess: IdpSession) -> dict[str, Any]:
    """Everything the account page shows beyond who I am."""
    return {**applications(sess), "aws_accounts": aws_roles(sess),
            "idp_sessions": sessions(sess)}


def _refused() -> Response:
    html = render_template("error.html", status=400, title="Request refused",
                           message="missing or invalid CSRF token")
    return Response(html, status=400, mimetype="text/html")


@bp.post("/account/applications/revoke")
def revoke_application() -> Response:
    """Withdraw an OIDC client's access: forget the consent and refuse every refresh token
    family of mine for it (RFC 7009 §2.1: the whole grant)."""
    sess = current_session()
    if sess is None:
        return login_redirect("/account")
    if not security.csrf_ok():
        return _refused()
    comps = components()
    provider = comps.extras.get("oidc")
    if provider is None:
        return redirect("/account", code=303)
    client = provider.core.clients.get(request.form.get("client_id", "")[:128])
    if client is None:
        return redirect("/account", code=303)
    state = provider.core.state
    had = state.forget_consent(client.client_id, sess.subject)
    state.revoke_grants(client.client_id, sess.subject, int(time.time()),
                        provider.core.config.refresh_family_ttl)
    comps.auditor.emit("RevokeApplication", request_info(), user=sess.username,
                       resources=[{"ARN": client.client_id, "type": "OIDC::Client"}],
                       additional={"consentDeleted": had})
    return redirect("/account?revoked=1", code=303)


@bp.post("/account/sessions/sign-out-others")
def sign_out_others() -> Response:
    """End every other IdP session of mine (this one stays)."""
    sess = current_session()
    if sess is None:
        return login_redirect("/account")
    if not security.csrf_ok():
        return _refused()
    comps = components()
    ended = comps.sessions.end_others(sess)
    comps.auditor.emit("SignOutOtherSessions", request_info(), user=sess.username,
                       event_type="AwsConsoleSignIn", additional={"sessionsEnded": ended})
    return redirect(f"/account?signed_out={ended}", code=303)
