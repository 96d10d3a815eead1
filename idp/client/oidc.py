"""Signing in from a terminal: authorization code with PKCE on a loopback redirect
(RFC 8252 §7.3, RFC 7636), the device authorization grant (RFC 8628), and refresh-token
rotation (RFC 6749 §6).  The client is public (``token_endpoint_auth_method: none``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idp.client.http import ClientError, get_json, oauth_post

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOGIN_TIMEOUT = 300.0


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorize: str
    token: str
    device: str | None

    @classmethod
    def discover(cls, issuer: str) -> Endpoints:
        """OIDC Discovery §4: the provider's metadata, whose ``issuer`` must be ours (§4.3)."""
        issuer = issuer.rstrip("/")
        meta = get_json(issuer + "/.well-known/openid-configuration")
        if str(meta.get("issuer", "")).rstrip("/") != issuer:
            raise ClientError(f"discovery at {issuer} names another issuer "
                              f"`{meta.get('issuer')}`")
        try:
            return cls(issuer, str(meta["authorization_endpoint"]),
                       str(meta["token_endpoint"]),
                       meta.get("device_authorization_endpoint"))
        except KeyError as exc:
            raise ClientError(f"discovery at {issuer} has no `{exc.args[0]}`") from None


def claims_of(jwt: str) -> dict[str, Any]:
    """The payload of a JWT the token endpoint just gave us over its own channel (OIDC Core
    §3.1.3.7 lets a client skip the signature check for a token received directly from the
    token endpoint over TLS): used to list the roles, never to authorize anything."""
    try:
        part = jwt.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def roles_of(tokens: dict[str, Any]) -> list[str]:
    """The role ARNs the mapping gives the person (the ``roles`` claim)."""
    for name in ("id_token", "access_token"):
        roles = claims_of(str(tokens.get(name, ""))).get("roles")
        if isinstance(roles, list) and all(isinstance(r, str) for r in roles):
            return list(roles)
    return []


def has_display() -> bool:
    """Whether a browser can be opened here (macOS, Windows, or an X11/Wayland display)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _Callback(http.server.BaseHTTPRequestHandler):
    result: dict[str, str] | None = None
    done: threading.Event

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/callback":
            self.send_error(404)
            return
        query = urllib.parse.parse_qs(url.query)
        type(self).result = {k: v[0] for k, v in query.items() if len(v) == 1}
        body = (b"<!doctype html><title>idp login</title><p>You may close this window and "
                b"return to the terminal.</p>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).done.set()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def browser_login(ep: Endpoints, client_id: str, scopes: list[str], *,
                  say: Callable[[str], None], open_browser: bool = True,
                  acr_values: str | None = None) -> dict[str, Any]:
    """Authorization code + PKCE S256 with the redirect on ``http://127.0.0.1:<port>/callback``
    (RFC 8252 §7.3: any port); ``state`` checked in constant time, ``iss`` checked when sent
    (RFC 9207).  ``acr_values`` asks for a stronger sign-in (step-up, OIDC Core §3.1.2.1)."""
    class handler(_Callback):  # noqa: N801 - one class per login: its own result
        result = None
        done = threading.Event()

    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    verifier, challenge = _pkce()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": " ".join(scopes), "state": state, "nonce": nonce,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    if acr_values:
        params["acr_values"] = acr_values
    url = ep.authorize + "?" + urllib.parse.urlencode(params)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        say(f"Sign in at: {url}")
        if open_browser:
            try:
                webbrowser.open(url)
            except webbrowser.Error:
                pass
        if not handler.done.wait(LOGIN_TIMEOUT):
            raise ClientError("no answer from the browser within 5 minutes")
    finally:
        server.shutdown()
        server.server_close()
    got: dict[str, str] = handler.result or {}
    if not hmac.compare_digest(got.get("state", ""), state):
        raise ClientError("the browser's answer does not carry this login's state")
    if "iss" in got and got["iss"].rstrip("/") != ep.issuer:
        raise ClientError("the browser's answer names another issuer (RFC 9207)")
    if "error" in got:
        raise ClientError(f"{got['error']}: {got.get('error_description', '')}".rstrip(": "),
                          got["error"])
    if "code" not in got:
        raise ClientError("the browser's answer has no code")
    tokens = oauth_post(ep.token, {"grant_type": "authorization_code", "code": got["code"],
                                   "redirect_uri": redirect_uri, "client_id": client_id,
                                   "code_verifier": verifier})
    if claims_of(str(tokens.get("id_token", ""))).get("nonce") != nonce:
        raise ClientError("the ID token does not carry this login's nonce")
    return tokens


def device_login(ep: Endpoints, client_id: str, scopes: list[str], *,
                 say: Callable[[str], None],
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The device authorization grant (RFC 8628 §3.1–§3.5): show the code, poll at the
    interval asked, slow down when told."""
    if not ep.device:
        raise ClientError(f"{ep.issuer} offers no device authorization endpoint")
    start = oauth_post(ep.device, {"client_id": client_id, "scope": " ".join(scopes)})
    say(f"To sign in, open {start.get('verification_uri_complete') or start['verification_uri']}"
        f" and check that it shows the code {start['user_code']}")
    interval = float(start.get("interval", 5))
    deadline = time.monotonic() + float(start.get("expires_in", 600))
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            return oauth_post(ep.token, {"grant_type": DEVICE_GRANT, "client_id": client_id,
                                         "device_code": str(start["device_code"])})
        except ClientError as exc:
            if exc.code == "authorization_pending":
                continue
            if exc.code == "slow_down":
                interval += 5
                continue
            raise
    raise ClientError("the device code expired before it was approved", "expired_token")


def refresh(ep: Endpoints, client_id: str, refresh_token: str) -> dict[str, Any]:
    """Refresh (RFC 6749 §6): the answer carries the rotated refresh token."""
    return oauth_post(ep.token, {"grant_type": "refresh_token", "client_id": client_id,
                                 "refresh_token": refresh_token})
