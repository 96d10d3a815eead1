"""Verification of OIDC tokens for ``AssumeRoleWithWebIdentity`` (STS API Reference,
``AssumeRoleWithWebIdentity``; IAM User Guide, "Create an OpenID Connect (OIDC) identity
provider in IAM" and "Passing session tags using AssumeRoleWithWebIdentity"; RFC 7519 §4.1,
RFC 8725 §3.1).

The issuer (``iss``) names the IAM OIDC provider; the keys are that provider's JWKS (this IdP's
own :class:`~idp.keys.KeyRing` when the provider is this IdP, a ``jwks_file`` or a ``jwks_url``
fetched and cached otherwise).  Only ``RS256`` and ``ES256`` are accepted (``none`` and HMAC
never), the ``kid`` must name a key of that algorithm, ``aud`` must be one of the provider's
client IDs, ``exp`` must be in the future and ``nbf``/``iat`` not in the future (with skew).

The claims become condition keys of the role's trust policy (IAM User Guide, "Available keys
for AWS web identity federation"): ``<provider>:aud``, ``<provider>:sub``, ``<provider>:amr``,
and this IdP's own ``<provider>:roles``, the token's ``roles`` claim (the role ARNs the mapping
gives the person), multivalued like ``amr``.  A ``roles`` claim that is not a string or a list
of strings is left out of the context, so every condition on it fails closed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.iam import IamModel, OidcProvider
from idp.keys import KeyRing
from idp.sts.errors import expired_token, invalid_token

ALGS = ("RS256", "ES256")
TAGS_CLAIM = "https://aws.amazon.com/tags"
JWKS_TTL = 3600
MULTIVALUED = ("amr", "roles")  # claims exposed as multivalued condition keys


@dataclass(frozen=True)
class WebIdentityClaims:
    provider: OidcProvider
    issuer: str
    subject: str
    audience: str
    claims: Mapping[str, Any]
    principal_tags: dict[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()

    def condition_claims(self) -> dict[str, str | list[str]]:
        """The claims the trust policy sees as ``<provider>:<claim>`` (``aud``, ``sub``, and
        ``amr``/``roles`` when present as a string or a list of strings)."""
        out: dict[str, str | list[str]] = {"aud": self.audience, "sub": self.subject}
        for name in MULTIVALUED:
            value = self.claims.get(name)
            if isinstance(value, str):
                out[name] = value
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[name] = list(value)
        return out


def _segment(token: str, i: int) -> dict[str, Any]:
    try:
        part = token.split(".")[i]
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, IndexError):
        raise invalid_token("Couldn't parse the web identity token") from None
    if not isinstance(data, dict):
        raise invalid_token("Couldn't parse the web identity token")
    return data


def _norm(url: str) -> str:
    return url.rstrip("/")


class JwksCache:
    """Public keys per OIDC provider, imported once (remote JWKS refreshed hourly)."""

    def __init__(self, keys: KeyRing, own_issuer: str,
                 fetch: Callable[[str], bytes] | None = None) -> None:
        self.own_issuer = _norm(own_issuer)
        self._own: dict[str, tuple[str, Any]] = {
            k.kid: (str(k.alg), _import(k.private_key.public_key())) for k in keys.published()}
        self._fetch = fetch or _http_get
        self._cache: dict[str, tuple[float, dict[str, tuple[str, Any]]]] = {}
        self._lock = threading.Lock()

    def keys_for(self, p: OidcProvider) -> dict[str, tuple[str, Any]]:
        if _norm(p.url) == self.own_issuer and not p.jwks_file:
            return self._own
        hit = self._cache.get(p.arn)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if p.jwks_file:
            raw = Path(p.jwks_file).read_bytes()
        elif p.jwks_url:
            raw = self._fetch(p.jwks_url)
        else:
            raw = self._fetch(_norm(p.url) + "/.well-known/jwks.json")
        keyset = KeySet.import_key_set(json.loads(raw))
        found = {str(k.kid): (str(k.get("alg") or ("ES256" if k.key_type == "EC" else "RS256")),
                              k) for k in keyset.keys if k.kid}
        with self._lock:
            self._cache[p.arn] = (time.monotonic() + JWKS_TTL, found)
        return found


def _import(public_key: Any) -> RSAKey | ECKey:
    if hasattr(public_key, "curve"):
        return ECKey.import_key(public_key)
    return RSAKey.import_key(public_key)


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - configured URL
        return bytes(resp.read(1 << 20))


class WebIdentityVerifier:
    def __init__(self, model: IamModel, jwks: JwksCache, clock: Callable[[], float],
                 skew: int = 60) -> None:
        self.model, self.jwks, self.clock, self.skew = model, jwks, clock, skew

    def provider(self, issuer: str) -> OidcProvider:
        for p in self.model.oidc_providers.values():
            if _norm(p.url) == _norm(issuer):
                return p
        raise invalid_token(f"No OpenIDConnect provider found in your account for {issuer}")

    def verify(self, token: str) -> WebIdentityClaims:
        """A signed JWT (RFC 7515 §7.1 compact form) of a registered provider; an opaque
        access token (a bare reference, no ``.``) has no claims to check and is refused."""
        if "." not in token:
            raise invalid_token("The web identity token is not a JWT: an opaque access token "
                                "cannot be exchanged, use an ID token or a JWT access token")
        header = _segment(token, 0)
        alg = header.get("alg")
        if alg not in ALGS:
            raise invalid_token("The web identity token is not signed with an allowed "
                                "algorithm", f"alg {alg!r}")
        unverified = _segment(token, 1)
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise invalid_token("The web identity token has no issuer")
        p = self.provider(iss)
        keys = self.jwks.keys_for(p)
        entry = keys.get(str(header.get("kid")))
        if entry is None or entry[0] != alg:
            raise invalid_token("The web identity token was not signed by a key of "
                                f"{iss}", f"kid {header.get('kid')!r}")
        try:
            claims = dict(jwt.decode(token, entry[1], algorithms=[alg]).claims)
        except (JoseError, ValueError, TypeError) as exc:  # TypeError: a `crit` not a list
            raise invalid_token("The web identity token signature is invalid", str(exc)) \
                from None
        return self._check(claims, p, iss)

    def _check(self, c: dict[str, Any], p: OidcProvider, iss: str) -> WebIdentityClaims:
        now = self.clock()
        for name in ("exp", "iat"):
            if not isinstance(c.get(name), int | float):
                raise invalid_token(f"The web identity token has no `{name}`")
        if c["exp"] <= now - self.skew:
            raise expired_token("Token is expired")
        if c["iat"] > now + self.skew:
            raise invalid_token("The web identity token was issued in the future")
        if "nbf" in c and (not isinstance(c["nbf"], int | float) or c["nbf"] > now + self.skew):
            raise invalid_token("The web identity token is not yet valid")
        aud = c.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        match = next((a for a in auds if a in p.client_ids), None)
        if match is None:
            raise invalid_token("Incorrect token audience")
        sub = c.get("sub")
        if not isinstance(sub, str) or not sub:
            raise invalid_token("The web identity token has no `sub`")
        tags, transitive = _session_tags(c.get(TAGS_CLAIM))
        return WebIdentityClaims(p, iss, sub, match, c, tags, transitive)


def _session_tags(value: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """``{"principal_tags": {"k": ["v"]}, "transitive_tag_keys": ["k"]}``."""
    if value is None:
        return {}, ()
    if not isinstance(value, dict):
        raise invalid_token(f"Invalid `{TAGS_CLAIM}` claim")
    tags: dict[str, str] = {}
    for k, v in (value.get("principal_tags") or {}).items():
        vals = v if isinstance(v, list) else [v]
        if len(vals) != 1 or not isinstance(vals[0], str):
            raise invalid_token(f"Invalid `{TAGS_CLAIM}` claim: one string value per tag")
        tags[str(k)] = vals[0]
    keys = value.get("transitive_tag_keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise invalid_token(f"Invalid `{TAGS_CLAIM}` claim: transitive_tag_keys")
    return tags, tuple(keys)
