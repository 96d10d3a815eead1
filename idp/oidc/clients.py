"""Registered clients and client authentication (RFC 6749 §2.3, OIDC Core §9, RFC 7523 §3).

Clients come from :class:`idp.config.OidcConfig`; the demo clients of DESIGN.md are built here
only when the app runs in demo mode.  Secrets may be plain, ``sha256:<hex>`` or an argon2 hash;
every comparison is constant-time.  A successful argon2 verification is remembered as the
SHA-256 of the secret, so the hot path of a busy client does not pay argon2 per request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc.jwk import KeySet

from idp.config import OidcClientConfig

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_LOOPBACK_URI = re.compile(
    r"http://(127\.0\.0\.1|\[::1\]|localhost)(?::([1-9][0-9]{0,4}))?([/?][^#]*)?")
_HOSTS = {"127.0.0.1": ("127.0.0.1", "[::1]"), "[::1]": ("[::1]", "127.0.0.1")}
"""Loopback hosts interchangeable in a native client's redirect (RFC 8252 §7.3: IPv4 and
IPv6 loopback literals; ``localhost`` only where registered, §8.3)."""


def _loopback(uri: str, *, with_port: bool = False) -> tuple[str, str] | None:
    """``(host, path-and-query)`` of a loopback redirect written exactly as RFC 8252 §7.3
    shows it: lowercase ``http``, a loopback literal, then a port of ASCII digits (when
    ``with_port``; registered URIs have none), no userinfo, no fragment."""
    m = _LOOPBACK_URI.fullmatch(uri)
    if m is None or (m.group(2) is not None) != with_port:
        return None
    if with_port and int(m.group(2)) > 65535:
        return None
    return m.group(1), m.group(3) or ""


def _same_loopback(presented: tuple[str, str], registered: tuple[str, str]) -> bool:
    host, rest = presented
    return rest == registered[1] and host in _HOSTS.get(registered[0], (registered[0],))


@dataclass(frozen=True)
class Client:
    """A registered client, as the protocol core needs it."""

    config: OidcClientConfig
    keyset: KeySet | None = None
    registered: bool = False  # registered on the fly (idp.sso), held in the store

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def name(self) -> str:
        return self.config.client_name or self.config.client_id

    @property
    def auth_method(self) -> str:
        return self.config.token_endpoint_auth_method

    @property
    def public(self) -> bool:
        """Cannot keep a secret (RFC 6749 §2.1): no client authentication, or registered on
        the fly, where the secret proves only the registration (RFC 7591 §2)."""
        return self.auth_method == "none" or self.registered

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.config.grant_types

    def redirect_uri_ok(self, uri: str) -> bool:
        """Exact string match (RFC 9700 §4.1.3); native clients may use any port on the
        loopback address they registered (RFC 8252 §7.3), and only they."""
        if uri in self.config.redirect_uris:
            return True
        if not self.config.native:
            return False
        presented = _loopback(uri, with_port=True)
        return presented is not None and any(
            registered is not None and _same_loopback(presented, registered)
            for registered in map(_loopback, self.config.redirect_uris))

    def redirect_uri_hint(self) -> str:
        """What redirect URIs this client may use, for the error page (never redirected to)."""
        forms: list[str] = []
        for registered in self.config.redirect_uris if self.config.native else []:
            found = _loopback(registered)
            if found is not None:
                forms += [f"`http://{host}:<port>{found[1]}`"
                          for host in _HOSTS.get(found[0], (found[0],))]
        if not forms:
            return "redirect_uri is not registered for this client"
        return ("redirect_uri is not registered for this client; a loopback redirect may "
                "differ from the registered one only in its port: " + " or ".join(
                    dict.fromkeys(forms)))

    def post_logout_uri_ok(self, uri: str) -> bool:
        """Exact match with a registered ``post_logout_redirect_uri`` (RP-Initiated Logout §3)."""
        return uri in self.config.post_logout_redirect_uris


def demo_clients() -> list[OidcClientConfig]:
    """The OIDC clients of DESIGN.md "The demo": for ``idp demo`` only."""
    return [
        OidcClientConfig(
            client_id="demo-cli", client_name="Demo CLI", token_endpoint_auth_method="none",
            redirect_uris=["http://127.0.0.1/callback"], native=True,
            grant_types=["authorization_code", "refresh_token", DEVICE_GRANT]),  # type: ignore[list-item]
        OidcClientConfig(
            client_id="demo-web", client_name="Demo Web App", client_secret="demo-web-secret",
            redirect_uris=["http://127.0.0.1:8400/callback"],
            post_logout_redirect_uris=["http://127.0.0.1:8400/"]),
        OidcClientConfig(
            client_id="demo-service", client_name="Demo Service",
            client_secret="demo-service-secret", grant_types=["client_credentials"],
            scopes=["roles"], require_consent=False),
    ]


class ClientRegistry:
    """Every client this provider knows, by ``client_id``."""

    def __init__(self, configs: Iterable[OidcClientConfig]) -> None:
        self._clients: dict[str, Client] = {}
        for cfg in configs:
            keyset = KeySet.import_key_set(cfg.jwks) if cfg.jwks else None  # type: ignore[arg-type]
            self._clients[cfg.client_id] = Client(cfg, keyset)
        self._hasher = PasswordHasher()
        self._verified: dict[str, bytes] = {}  # client ID -> HMAC of its verified secret
        self._cache_key = secrets.token_bytes(32)  # this process's, never stored
        self._lock = threading.Lock()
        # clients registered on the fly (idp.sso.registration), looked up in the store
        self.dynamic: Callable[[str], Client | None] | None = None

    def get(self, client_id: str | None) -> Client | None:
        if not client_id or len(client_id) > 128:
            return None
        found = self._clients.get(client_id)
        if found is None and self.dynamic is not None:
            return self.dynamic(client_id)
        return found

    def __iter__(self) -> Iterable[Client]:  # type: ignore[misc]
        return iter(self._clients.values())

    def secret_ok(self, client: Client, presented: str) -> bool:
        """Check a client secret in constant time (argon2 verified once per process, then by a
        keyed hash of what was verified)."""
        stored = client.config.client_secret
        if not stored or not presented or len(presented) > 1024:
            return False
        if stored.startswith("$argon2"):
            # what is remembered is keyed (a process-random HMAC key): a memory dump gives no
            # fast hash to guess a secret against
            keyed = hmac.digest(self._cache_key, presented.encode(), "sha256")
            with self._lock:
                known = self._verified.get(client.client_id)
            if known is not None and hmac.compare_digest(known, keyed):
                return True
            try:
                self._hasher.verify(stored, presented)
            except (VerificationError, InvalidHashError):
                return False
            with self._lock:
                self._verified[client.client_id] = keyed
            return True
        digest = hashlib.sha256(presented.encode()).digest()
        if stored.startswith("sha256:"):
            return hmac.compare_digest(stored[7:].lower().encode(), digest.hex().encode())
        return hmac.compare_digest(hashlib.sha256(stored.encode()).digest(), digest)
