"""Clients registered on the fly by ``RegisterClient`` (SSO OIDC API; RFC 7591 §2-3 for the
metadata it mirrors).  Anyone may register, as with IAM Identity Center, so a registration
grants nothing by itself: it is a public client (RFC 6749 §2.1) limited to the
``sso:account:access`` scope, with a per-registration secret the SDKs send back on every call.

Registrations live in the store under ``idp:ssoclient:<client_id>`` (the secret as its
SHA-256) with a TTL (90 days, as AWS's ``clientSecretExpiresAt``), and are rate-limited per
source IP (``idp:ratelimit:ssoreg:<ip>``).  The OIDC provider's client registry looks them up
through :meth:`Registrations.client`, so the device page, ``/oauth2/authorize`` and the grants
see them as ordinary clients.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from idp.config import OidcClientConfig
from idp.oidc.clients import DEVICE_GRANT, Client
from idp.sso.errors import SsoError, invalid_request, oauth_error
from idp.store import Store, get_json, key, new_id, set_json

SCOPE = "sso:account:access"
SCOPES = (SCOPE,)
GRANT_TYPES = ("authorization_code", "refresh_token", DEVICE_GRANT)
DEFAULT_GRANTS = (DEVICE_GRANT, "refresh_token")
CLIENT_ID = re.compile(r"^sso\.[A-Za-z0-9_-]{43}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


@dataclass(frozen=True)
class RegistrationSettings:
    """Lifetime of a registration and the per-IP budget (``registrations`` per ``window``)."""

    ttl: int = 90 * 86400
    registrations: int = 20
    window: int = 3600


@dataclass(frozen=True)
class Registration:
    """A new registration, as ``RegisterClient`` returns it (the secret only this once)."""

    client_id: str
    client_secret: str
    issued_at: int
    expires_at: int


def _strings(body: dict[str, Any], name: str, limit: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > limit or \
            not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in value):
        raise invalid_request(f"`{name}` must be a list of strings")
    return list(dict.fromkeys(value))


def _loopback(uri: str) -> bool:
    """A native app's loopback redirect (RFC 8252 §7.3): ``http://127.0.0.1`` or ``[::1]``,
    any path, no fragment; the port is free at authorization time."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
            and not parts.fragment and "#" not in uri and not parts.username)


class Registrations:
    """Register and look up clients of the SSO OIDC API."""

    def __init__(self, store: Store, settings: RegistrationSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings or RegistrationSettings()
        self.clock = clock

    def register(self, body: dict[str, Any], source_ip: str) -> Registration:
        """``RegisterClient``: validate the metadata, spend the IP's budget, store."""
        name, ctype = body.get("clientName"), body.get("clientType")
        if not isinstance(name, str) or not isinstance(ctype, str):
            raise invalid_request("`clientName` and `clientType` are required strings")
        if not _NAME.match(name):
            raise oauth_error("invalid_client_metadata", "`clientName` must be 1 to 128 "
                              "printable characters")
        if ctype != "public":
            raise oauth_error("invalid_client_metadata", "`clientType` must be `public`")
        for unsupported in ("issuerUrl", "entitledApplicationArn"):
            if body.get(unsupported) is not None:
                raise invalid_request(f"`{unsupported}` is not supported")
        scopes = _strings(body, "scopes", 16) or list(SCOPES)
        if any(s not in SCOPES for s in scopes):
            raise oauth_error("invalid_scope", f"only the `{SCOPE}` scope can be registered")
        grants = _strings(body, "grantTypes", 8) or list(DEFAULT_GRANTS)
        if any(g not in GRANT_TYPES for g in grants):
            raise oauth_error("unsupported_grant_type", "grant types are "
                              + ", ".join(f"`{g}`" for g in GRANT_TYPES))
        # the portal finds the person through the refresh-token family: always issued
        grants = list(dict.fromkeys([*grants, "refresh_token"]))
        redirects = _strings(body, "redirectUris", 8) or []
        if any(not _loopback(u) for u in redirects):
            raise oauth_error("invalid_redirect_uri", "redirect URIs must be loopback "
                              "`http://127.0.0.1/...` or `http://[::1]/...` URIs")
        if "authorization_code" in grants and not redirects:
            raise oauth_error("invalid_redirect_uri", "the `authorization_code` grant needs "
                              "`redirectUris`")
        if self.store.incr(key("ratelimit", f"ssoreg:{source_ip[:64]}"),
                           self.settings.window) > self.settings.registrations:
            raise oauth_error("slow_down", "too many registrations from this address, try "
                              "again later")
        now = int(self.clock())
        client_id, secret = "sso." + new_id(32), new_id(48)
        record = {"name": name, "secret": hashlib.sha256(secret.encode()).hexdigest(),
                  "scopes": scopes, "grants": grants, "redirect_uris": redirects,
                  "iat": now, "exp": now + self.settings.ttl}
        set_json(self.store, key("ssoclient", client_id), record, self.settings.ttl)
        return Registration(client_id, secret, now, now + self.settings.ttl)

    def client(self, client_id: str) -> Client | None:
        """The registered client with this ID, while its registration lasts."""
        if not CLIENT_ID.match(client_id):
            return None
        rec = get_json(self.store, key("ssoclient", client_id))
        if not isinstance(rec, dict) or rec.get("exp", 0) <= self.clock():
            return None
        try:
            cfg = OidcClientConfig(
                client_id=client_id, client_name=rec["name"],
                token_endpoint_auth_method="client_secret_post",
                client_secret="sha256:" + rec["secret"], redirect_uris=rec["redirect_uris"],
                grant_types=rec["grants"], scopes=rec["scopes"], native=True)
        except (KeyError, TypeError, ValidationError):
            return None
        return Client(cfg, registered=True)


def registered(client: Client | None) -> bool:
    """Whether a client came from ``RegisterClient``."""
    return client is not None and client.registered


def unknown_client(client_id: object) -> SsoError:
    return oauth_error("invalid_client", "unknown or expired client registration",
                       debug=f"client `{str(client_id)[:64]}`")
