"""The provider's shared parts and its plain request/result types (no web framework here)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from idp.audit import Auditor, RequestInfo
from idp.config import OidcConfig
from idp.keys import KeyRing
from idp.oidc.claims import ClaimBuilder, People, RoleMapper
from idp.oidc.clients import ClientRegistry
from idp.oidc.jose import TokenSigner
from idp.oidc.state import OidcState
from idp.store import Store, new_id


def parse_uint(value: str, max_digits: int = 10) -> int | None:
    """A non-negative integer written in ASCII digits only, at most ``max_digits`` long, or
    ``None`` (``str.isdigit`` and ``int`` accept other scripts' digits, signs, spaces and
    ``_``; a parameter is ``1*DIGIT``, RFC 5234 §B.1)."""
    if not value or len(value) > max_digits or not value.isascii() or not value.isdigit():
        return None
    return int(value)


@dataclass(frozen=True)
class OAuthRequest:
    """A request as the core sees it: parameters (query or form), the ``Authorization``
    header and who sent it.  ``repeated`` names parameters given more than once (RFC 6749
    §3.1: invalid)."""

    params: Mapping[str, str]
    authorization: str | None = None
    info: RequestInfo = field(default_factory=RequestInfo)
    repeated: frozenset[str] = frozenset()

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value else None


@dataclass(frozen=True)
class JsonResult:
    """A JSON response: body, status and extra headers."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Core:
    """Everything the protocol handlers share, built once per process."""

    issuer: str
    config: OidcConfig
    clients: ClientRegistry
    signer: TokenSigner
    claims: ClaimBuilder
    state: OidcState
    auditor: Auditor
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = new_id
    mfa_clients: frozenset[str] = frozenset()  # mfa.require.clients

    @classmethod
    def build(cls, issuer: str, config: OidcConfig, *, keys: KeyRing, store: Store,
              auditor: Auditor, roles: RoleMapper | None, secret: bytes,
              extra_clients: list[Any] | None = None,
              clock: Callable[[], float] = time.time,
              id_gen: Callable[[], str] = new_id, people: People | None = None) -> Core:
        issuer = issuer.rstrip("/")
        salt = (config.pairwise_salt.encode() if config.pairwise_salt else
                hashlib.sha256(b"oidc-pairwise|" + secret).digest())
        return cls(issuer, config, ClientRegistry([*config.clients, *(extra_clients or [])]),
                   TokenSigner(keys, issuer, clock), ClaimBuilder(roles, salt, people),
                   OidcState(store), auditor, clock, id_gen)

    def now(self) -> int:
        return int(self.clock())

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def audience(self) -> str:
        """``aud`` of our access tokens (RFC 9068 §3): the issuer unless configured."""
        return self.config.access_token_audience or self.issuer

    def audit(self, event: str, info: RequestInfo, *, user: str | None = None,
              client_id: str | None = None, error: Exception | None = None,
              **data: Any) -> None:
        additional = {"clientId": client_id, **data} if client_id else data
        code = getattr(error, "code", None) if error else None
        self.auditor.emit(event, info, user=user, error_code=code,
                          error_message=getattr(error, "description", None) if error else None,
                          additional=additional or None)
