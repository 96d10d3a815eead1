"""OIDC failure presets: ID tokens a relying party must refuse, each modelling one attack or
mistake (OIDC Core §3.1.3.7 ID Token Validation; RFC 8725 JWT Best Current Practices).

Each starts from the genuine ID token the IdP would issue (:mod:`idp.testing.oidc_mint`) and
breaks exactly one thing.  Validly signed presets are signed by the provider's own signer with
its active key; the others are built by hand, as an attacker would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.testing.errors import KitError
from idp.testing.oidc_mint import merged, oidc_core, payload

if TYPE_CHECKING:
    from idp.app import Components

EVIL_ISSUER = "https://evil.example"


@dataclass(frozen=True)
class Preset:
    name: str
    attack: str
    make: Callable[[Components, str], str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def _resign(comps: Components, token: str, changes: dict[str, Any]) -> str:
    core = oidc_core(comps)
    alg = _header(token).get("alg", core.config.id_token_alg)
    return core.signer.sign(merged(payload(token), changes), alg=alg)


def expired(comps: Components, token: str) -> str:
    """Expired ten minutes ago (OIDC Core §3.1.3.7 step 9): a replayed old token."""
    claims = payload(token)
    return _resign(comps, token, {"iat": claims["iat"] - 1500, "exp": claims["iat"] - 600,
                                  "auth_time": claims["iat"] - 1500})


def wrong_issuer(comps: Components, token: str) -> str:
    """``iss`` is another provider (step 2): a token of one IdP presented as another's."""
    return _resign(comps, token, {"iss": EVIL_ISSUER})


def wrong_audience(comps: Components, token: str) -> str:
    """``aud`` and ``azp`` are another client (step 3): a token issued to one app replayed at
    another (the "confused deputy")."""
    return _resign(comps, token, {"aud": "another-client", "azp": "another-client"})


def wrong_nonce(comps: Components, token: str) -> str:
    """``nonce`` is not the one the RP sent (step 11): an injected or replayed token."""
    return _resign(comps, token, {"nonce": "not-your-nonce-" + secrets.token_hex(8)})


def missing_sub(comps: Components, token: str) -> str:
    """No ``sub`` (OIDC Core §2: REQUIRED): an RP keying accounts on it must refuse."""
    return _resign(comps, token, {"sub": None})


def alg_none(comps: Components, token: str) -> str:
    """``alg: none`` and no signature (RFC 8725 §2.1, §3.1): an RP that lets the token pick
    its algorithm accepts anything."""
    return f'{_json({"alg": "none", "typ": "JWT"})}.{token.split(".")[1]}.'


def hs256_public_key(comps: Components, token: str) -> str:
    """HS256 with the provider's public key (PEM) as the HMAC secret (RFC 8725 §2.1
    algorithm confusion; CVE-2015-9235, CVE-2022-29217): an RP that verifies with "the key"
    whatever the header's ``alg`` accepts it."""
    head = _header(token)
    key = comps.keys.get(str(head.get("kid", "")))
    if key is None:
        raise KitError("the token's signing key is not in the key ring")
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f'{_json({"alg": "HS256", "kid": key.kid, "typ": "JWT"})}.' \
                    f'{token.split(".")[1]}'
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@lru_cache(maxsize=1)
def _stranger() -> RSAKey:
    return RSAKey.import_key(rsa.generate_private_key(65537, 2048))


def unknown_kid(comps: Components, token: str) -> str:
    """Signed by a key the provider never published, under a ``kid`` not in its JWKS: an RP
    that fetches keys from a URL in the token, or trusts any key, is fooled."""
    kid = "unknown-" + secrets.token_hex(6)
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, payload(token), _stranger(),
                      algorithms=["RS256"])


def tampered_signature(comps: Components, token: str) -> str:
    """Claims changed after signing (``sub`` and ``email`` of someone else), the original
    signature kept: an RP that decodes without verifying accepts it."""
    head, _, sig = token.split(".")
    changed = merged(payload(token), {"sub": "attacker-chosen-admin",
                                      "email": "admin@example.org"})
    return f"{head}.{_json(changed)}.{sig}"


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("expired", "replay of an expired token", expired),
    Preset("wrong_issuer", "token of another provider", wrong_issuer),
    Preset("wrong_audience", "token for another client (confused deputy)", wrong_audience),
    Preset("wrong_nonce", "token injection or replay", wrong_nonce),
    Preset("alg_none", "unsigned token (alg none)", alg_none),
    Preset("hs256_public_key", "algorithm confusion: HS256 keyed with the public key",
           hs256_public_key),
    Preset("unknown_kid", "signed by a key the provider never published", unknown_kid),
    Preset("tampered_signature", "claims altered after signing", tampered_signature),
    Preset("missing_sub", "no subject", missing_sub),
)}


def apply(name: str, comps: Components, token: str) -> str:
    preset = PRESETS.get(name)
    if preset is None:
        raise KitError(f"unknown OIDC preset `{name}` ({', '.join(PRESETS)})")
    return preset.make(comps, token)
