"""Device authorization grant (RFC 8628): ``/oauth2/device_authorization`` (§3.1-3.2) and the
user's side at ``/device`` (§3.3).  User codes are 8 letters from a 20-letter alphabet without
vowels (§6.1: ~34.5 bits, shown as ``XXXX-XXXX``), and the device code itself is a 128+-bit
secret stored under its hash.

Every request that names a user code (looking it up, approving or denying it) spends one
attempt of one budget per person and one per client address (§5.1: brute-forcing the user
code), checks that the code is still pending and unexpired (§5.2), and is audited."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from idp.oidc.claims import Grantee
from idp.oidc.client_auth import authenticate
from idp.oidc.clients import DEVICE_GRANT, Client
from idp.oidc.core import Core, JsonResult, OAuthRequest
from idp.oidc.errors import OAuthError
from idp.oidc.grants import NO_STORE
from idp.oidc.state import digest, tagged
from idp.store import new_id

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
GUESSES_PER_PERSON = 20
"""User-code attempts per person (all sessions) per window: a lookup and an answer are two."""
GUESSES_PER_ADDRESS = 100
"""User-code attempts per client address (all people) per window."""
GUESS_WINDOW = 600


def normalize_user_code(raw: str) -> str:
    """Upper-case, separators dropped (§6.1: case-insensitive, ignore punctuation)."""
    return "".join(c for c in raw.upper() if c in ALPHABET)[:8]


def device_authorization(core: Core, req: OAuthRequest) -> JsonResult:
    """Start a device flow for an authenticated (or public) client (§3.1, §3.2)."""
    try:
        client = authenticate(core, req, "/oauth2/device_authorization")
        if not client.allows_grant(DEVICE_GRANT):
            raise OAuthError("unauthorized_client", "client may not use the device flow")
        scopes = list(dict.fromkeys((req.get("scope") or "openid").split()))
        if any(s not in client.config.scopes for s in scopes):
            raise OAuthError("invalid_scope", "requested scope is not allowed")
    except OAuthError as exc:
        core.audit("OidcDeviceAuthorizationRefused", req.info, error=exc, reason=exc.debug,
                   clientId=(req.get("client_id") or "")[:128])
        return JsonResult(exc.body(), exc.status, dict(NO_STORE))
    device_code = tagged(new_id(), new_id(32))  # <family it will start>.<secret>
    user_code = "".join(secrets.choice(ALPHABET) for _ in range(8))
    ttl = core.config.device_code_ttl
    core.state.put_device(device_code, user_code, {
        "client_id": client.client_id, "scope": scopes, "user_code": user_code,
        "status": "pending", "expires_at": core.now() + ttl}, ttl + 60)
    shown = f"{user_code[:4]}-{user_code[4:]}"
    core.audit("OidcDeviceAuthorization", req.info, client_id=client.client_id,
               scope=" ".join(scopes))
    verification = core.url("/device")
    return JsonResult({
        "device_code": device_code, "user_code": shown, "verification_uri": verification,
        "verification_uri_complete": verification + "?" + urlencode({"user_code": shown}),
        "expires_in": ttl, "interval": core.config.device_poll_interval}, 200, dict(NO_STORE))


@dataclass(frozen=True)
class PendingDevice:
    """A device request the signed-in user is asked to approve."""

    user_code: str
    client: Client
    scopes: list[str]


def _spend_attempt(core: Core, req: OAuthRequest, grantee: Grantee) -> None:
    """Count one user-code attempt against the person's and the address's budgets (§5.1);
    ``slow_down`` (429) once either is spent.  Every attempt counts, found or not: the
    counters are fixed windows incremented atomically, so parallel requests cannot overrun."""
    person = core.state.count(f"devguess:user:{digest(grantee.subject)}", GUESS_WINDOW)
    address = core.state.count(f"devguess:ip:{req.info.source_ip}", GUESS_WINDOW)
    if person > GUESSES_PER_PERSON or address > GUESSES_PER_ADDRESS:
        raise OAuthError("slow_down", "too many attempts, wait a few minutes", status=429,
                         redirect=False, debug="user code budget spent")


def _pending(core: Core, raw_code: str) -> tuple[str, dict[str, Any], Client]:
    """The pending, unexpired device request of a user code (§3.3, §5.2)."""
    code = normalize_user_code(raw_code)
    found = core.state.device_by_user_code(code) if len(code) == 8 else None
    if found is None:
        raise OAuthError("invalid_request", "unknown or expired code", redirect=False)
    device_hash, rec = found
    client = core.clients.get(rec.get("client_id"))
    if rec.get("status") != "pending" or core.now() >= rec.get("expires_at", 0) or client is None:
        raise OAuthError("invalid_request", "unknown or expired code", redirect=False,
                         debug=f"code status {rec.get('status')}")
    return device_hash, rec, client


def _checked(core: Core, req: OAuthRequest, raw_code: str, grantee: Grantee,
             step: str) -> tuple[str, dict[str, Any], Client]:
    try:
        _spend_attempt(core, req, grantee)
        return _pending(core, raw_code)
    except OAuthError as exc:
        core.audit("OidcDeviceRefused", req.info, user=grantee.username, error=exc,
                   step=step, reason=exc.debug)
        raise


def find_device(core: Core, req: OAuthRequest, raw_code: str,
                grantee: Grantee) -> PendingDevice:
    """Look a user code up (one attempt); ``invalid_request`` if unknown or expired."""
    _, rec, client = _checked(core, req, raw_code, grantee, "lookup")
    core.audit("OidcDeviceLookup", req.info, user=grantee.username, client_id=client.client_id)
    return PendingDevice(rec["user_code"], client, rec["scope"])


def answer_device(core: Core, req: OAuthRequest, user_code: str, grantee: Grantee,
                  approve: bool) -> PendingDevice:
    """Record the user's answer (§3.3; one attempt, with the checks of a lookup); the
    device's next poll gets tokens or ``access_denied``."""
    device_hash, rec, client = _checked(core, req, user_code, grantee,
                                        "approve" if approve else "deny")
    rec["status"] = "approved" if approve else "denied"
    rec["grantee"] = grantee.to_json()
    core.state.update_device(device_hash, rec)
    core.audit("OidcDeviceApproved" if approve else "OidcDeviceDenied", req.info,
               user=grantee.username, client_id=client.client_id, scope=" ".join(rec["scope"]))
    return PendingDevice(rec["user_code"], client, rec["scope"])
