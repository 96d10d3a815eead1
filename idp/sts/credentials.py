"""Temporary credentials and the sessions behind them (DESIGN.md "Identifiers and keys").

An access key ID is ``ASIA`` + 16 base32 characters, the secret 40 characters, the session
token opaque: ``v1.<expiry>.<random>.<mac>`` in URL-safe base64, 256 bits of randomness, with an
HMAC (the IdP secret) over the access key ID and expiry so that a token whose session has
expired can be told from one that never existed (AWS answers ``ExpiredToken`` for the first,
``InvalidClientTokenId`` for the second).  The session is stored under ``idp:sts:<akid>`` with a
TTL equal to its lifetime; the token itself is not stored, only its SHA-256.

"Revoke active sessions" (IAM User Guide, "Revoking IAM role temporary security credentials")
is a per-role marker ``idp:sts-revoke:<role>``: sessions of the role issued before it are
refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from idp.revocation import marker_keys, revoked_in
from idp.store import Store, key
from idp.sts.errors import err

MAX_REVOKE_TTL = 129600 + 300  # the longest session (GetSessionToken, 36 h) plus skew


def new_access_key_id(prefix: str = "ASIA") -> str:
    """``ASIA`` + 16 base32 characters (80 bits)."""
    return prefix + base64.b32encode(secrets.token_bytes(10)).decode()


def new_secret() -> str:
    """40 characters of base64 (240 bits), like AWS secret access keys."""
    return base64.b64encode(secrets.token_bytes(30)).decode()


@dataclass(frozen=True)
class LongTermKey:
    """A configured long-term access key (``AKIA…``) of an IAM user."""

    access_key_id: str
    secret_access_key: str
    principal_arn: str
    user_id: str

    @property
    def account(self) -> str:
        return self.principal_arn.split(":")[4]


@dataclass(frozen=True)
class Session:
    """The context of one set of temporary credentials."""

    access_key_id: str
    secret: str
    arn: str  # arn:aws:sts::ACCT:assumed-role/ROLE/SESSION or the user ARN
    user_id: str  # AROA…:SESSION or AIDA…
    account: str
    issued: int  # epoch seconds
    expires: int
    kind: str  # "assumed-role" | "session-token"
    role_arn: str | None = None
    session_name: str | None = None
    session_policies: tuple[str, ...] = ()  # JSON documents (inline + managed, resolved)
    policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None
    mfa: bool = False
    chained: bool = False
    federation: Mapping[str, Any] = field(default_factory=dict)  # saml:* / oidc claims
    mfa_time: int | None = None  # when the second factor was used (aws:MultiFactorAuthAge)
    token_sha256: str = ""
    revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = dict(v) if isinstance(v, Mapping) else list(v) \
                if isinstance(v, tuple) else v
        d.pop("revoked")
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], revoked: bool = False) -> Session:
        d = dict(d)
        for name in ("session_policies", "policy_arns", "transitive_tag_keys"):
            d[name] = tuple(d.get(name) or ())
        return cls(**d, revoked=revoked)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CredentialStore:
    """Issue, find and revoke temporary credentials in the store."""

    def __init__(self, store: Store, secret: bytes, clock: Callable[[], float],
                 long_term: Mapping[str, LongTermKey] | None = None) -> None:
        self.store = store
        self._mac_key = hmac.new(secret, b"idp-sts-token", hashlib.sha256).digest()
        self.clock = clock
        self.long_term = dict(long_term or {})

    def _mac(self, akid: str, expires: int, rnd: bytes) -> bytes:
        msg = akid.encode() + struct.pack(">Q", expires) + rnd
        return hmac.new(self._mac_key, msg, hashlib.sha256).digest()[:16]

    def issue(self, session: Session) -> tuple[Session, str]:
        """Store ``session`` (its ``access_key_id``/``secret`` already drawn); the token."""
        rnd = secrets.token_bytes(32)
        token = "v1." + _b64u(struct.pack(">Q", session.expires) + rnd
                              + self._mac(session.access_key_id, session.expires, rnd))
        digest = hashlib.sha256(token.encode()).hexdigest()
        stored = replace(session, token_sha256=digest)
        ttl = max(1, session.expires - int(self.clock()))
        self.store.set(key("sts", session.access_key_id),
                       json.dumps(stored.to_json(), separators=(",", ":")).encode(), ttl)
        return stored, token

    def _token_expiry(self, akid: str, token: str) -> int | None:
        """The expiry a genuine token carries, or ``None`` when it is not ours."""
        if not token.startswith("v1.") or len(token) > 256:
            return None
        try:
            raw = _unb64u(token[3:])
        except ValueError:
            return None
        if len(raw) != 8 + 32 + 16:
            return None
        expires = struct.unpack(">Q", raw[:8])[0]
        if not hmac.compare_digest(raw[40:], self._mac(akid, expires, raw[8:40])):
            return None
        return int(expires)

    def find(self, akid: str, token: str | None) -> tuple[Session | None, LongTermKey | None]:
        """The session (or long-term key) of an access key ID, after checking the token.

        Raises ``InvalidClientTokenId`` / ``ExpiredToken`` (403) as AWS does.
        """
        if akid.startswith("AKIA"):
            lt = self.long_term.get(akid)
            if lt is None or token:
                raise err("InvalidClientTokenId", "The security token included in the request "
                          "is invalid.", 403)
            return None, lt
        if not token:
            raise err("InvalidClientTokenId", "The security token included in the request is "
                      "invalid.", 403, debug="no session token for a temporary key")
        raw = self.store.get(key("sts", akid))
        now = int(self.clock())
        if raw is None:
            exp = self._token_expiry(akid, token)
            if exp is not None and exp <= now + 5:
                raise err("ExpiredToken", "The security token included in the request is "
                          "expired", 403)
            raise err("InvalidClientTokenId", "The security token included in the request is "
                      "invalid.", 403)
        data = json.loads(raw)
        digest = hashlib.sha256(token.encode()).hexdigest()
        if not hmac.compare_digest(digest, data.get("token_sha256", "")):
            raise err("InvalidClientTokenId", "The security token included in the request is "
                      "invalid.", 403, debug="token does not match the key")
        if int(data["expires"]) <= now:
            raise err("ExpiredToken", "The security token included in the request is expired",
                      403)
        federation = data.get("federation") or {}
        people = [v for k, v in federation.items()  # web identity `sub`, SAML `saml:sub`
                  if (k == "sub" or k.endswith(":sub")) and isinstance(v, str)]
        # the person's and the role's revocation markers, in one round trip
        persons = marker_keys(people)
        role = [key("sts-revoke", _role_key(data["role_arn"]))] if data.get("role_arn") else []
        marks = self.store.get_many([*persons, *role])
        mark = marks[-1] if role else None
        if revoked_in(marks[:len(persons)], int(data["issued"])):
            raise err("InvalidClientTokenId", "The security token included in the request is "
                      "invalid.", 403, debug="the person was revoked")
        revoked = mark is not None and int(data["issued"]) < int(mark)
        return Session.from_json(data, revoked), None

    def peek(self, akid: str) -> Session | None:
        """A stored session by access key ID, no token needed (``GetAccessKeyInfo``)."""
        raw = self.store.get(key("sts", akid))
        return None if raw is None else Session.from_json(json.loads(raw))

    def revoke_role_sessions(self, role_arn: str, before: int | None = None) -> int:
        """Refuse every session of ``role_arn`` issued before ``before`` (default: now)."""
        when = int(self.clock()) if before is None else before
        self.store.set(key("sts-revoke", _role_key(role_arn)), str(when).encode(),
                       MAX_REVOKE_TTL)
        return when


def _role_key(role_arn: str) -> str:
    return hashlib.sha256(role_arn.encode()).hexdigest()[:32]
