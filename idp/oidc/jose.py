"""Signing and verifying our own JWTs (RFC 7515, RFC 7519, RFC 9068 §2, OIDC Core §2).

The keys of the :class:`~idp.keys.KeyRing` are imported once, when the provider is built
(into joserfc, which signs; :mod:`idp.oidc.jws` verifies with the `cryptography` public
keys); nothing is parsed per request.  Verification trusts only what the header cannot
choose: the algorithm must be one we sign with (``none`` and HMAC are refused, RFC 8725
§3.1-3.2), the ``kid`` must name a published key of that algorithm, and ``typ`` must match
the kind of token expected (RFC 9068 §4, RFC 8725 §3.11).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.keys import Alg, KeyRing
from idp.oidc.errors import OAuthError
from idp.oidc.jws import BadSignature, JwsInvalid, PublicKey, verify_compact

ALGS: tuple[Alg, ...] = ("RS256", "ES256")
AT_TYP = "at+jwt"
VERIFIED_CACHE_SIZE = 8192
"""How many verified tokens a :class:`TokenSigner` remembers (exact strings, oldest out)."""
VERIFIED_CACHE_MAX_LEN = 4096
"""Longer tokens are verified every time (bounds the cache to ~32 MiB)."""


def _import(private_key: Any) -> RSAKey | ECKey:
    if hasattr(private_key, "curve"):
        return ECKey.import_key(private_key)
    return RSAKey.import_key(private_key)


def _json_part(token: str, index: int) -> Any:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, parsed but not trusted."""
    try:
        data = _json_part(token, 0)
    except (ValueError, IndexError, RecursionError) as exc:
        raise OAuthError("invalid_token", "malformed token", debug=str(exc)) from exc
    if not isinstance(data, dict):
        raise OAuthError("invalid_token", "malformed token")
    crit = data.get("crit", [""])
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        # RFC 7515 §4.1.11: a non-empty array of names (the JOSE library iterates it)
        raise OAuthError("invalid_token", "malformed token", debug="crit is not a list")
    return data


def unverified_claims(token: str) -> dict[str, Any]:
    """The JWS payload of a compact JWT, parsed but not trusted: a JSON object, or
    ``invalid_token`` (RFC 7519 §7.2 step 10: the claims set is a JSON object)."""
    try:
        if token.count(".") != 2:
            raise ValueError("not a compact JWS")
        data = _json_part(token, 1)
    except (ValueError, IndexError, RecursionError) as exc:
        raise OAuthError("invalid_token", "malformed token", debug=str(exc)) from exc
    if not isinstance(data, dict):
        raise OAuthError("invalid_token", "malformed token", debug="claims are not an object")
    return data


class TokenSigner:
    """Sign with the active key; verify against every published key."""

    def __init__(self, keys: KeyRing, issuer: str, clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self.clock = clock
        self._signing = {alg: (k.kid, _import(k.private_key))
                         for alg in ALGS for k in [keys.active(alg)]}
        self._verifying: dict[str, tuple[Alg, PublicKey]] = {
            k.kid: (k.alg, k.private_key.public_key()) for k in keys.published()}
        # token -> (lower-cased typ header, claims) for tokens whose signature and issuer
        # verified with the key set above, which is fixed for this signer's life (keys are
        # loaded once, a rotation restarts the process): a JWS is the same bytes every time,
        # so its signature need not be checked again.  Time and audience are re-checked on
        # every call, and callers still check revocation in the store.
        self._verified: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def sign(self, claims: dict[str, Any], *, alg: Alg = "RS256", typ: str = "JWT") -> str:
        """A compact JWS with ``kid`` in the header."""
        kid, key = self._signing[alg]
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    def verify(self, token: str, *, typ: str | None, audience: str | None,
               check_exp: bool = True) -> dict[str, Any]:
        """Verify signature, ``iss``, ``exp``/``nbf`` and ``aud``; raise ``invalid_token``."""
        if not token or len(token) > 16384 or token.count(".") != 2:
            raise OAuthError("invalid_token", "malformed token")
        hit = self._verified.get(token)
        if hit is not None:
            if typ is not None and hit[0] not in (typ, f"application/{typ}"):
                raise OAuthError("invalid_token", "wrong token type", debug=hit[0])
            return self._check_claims(dict(hit[1]), audience, check_exp)
        htyp = ""

        def select(header: dict[str, Any]) -> tuple[Alg, PublicKey]:
            nonlocal htyp
            alg, kid = header.get("alg"), header.get("kid")
            if alg not in ALGS:
                raise OAuthError("invalid_token", "unsupported token algorithm", debug=str(alg))
            known = self._verifying.get(kid) if isinstance(kid, str) else None
            if known is None or known[0] != alg:
                raise OAuthError("invalid_token", "unknown signing key", debug=str(kid))
            htyp = str(header.get("typ", "")).lower()
            if typ is not None and htyp not in (typ, f"application/{typ}"):
                raise OAuthError("invalid_token", "wrong token type",
                                 debug=str(header.get("typ")))
            return known

        try:
            claims = verify_compact(token, select)[1]
        except BadSignature as exc:
            raise OAuthError("invalid_token", "bad token signature", debug=str(exc)) from exc
        except JwsInvalid as exc:
            raise OAuthError("invalid_token", "malformed token", debug=str(exc)) from exc
        if claims.get("iss") != self.issuer:
            raise OAuthError("invalid_token", "wrong issuer")
        checked = self._check_claims(claims, audience, check_exp)
        if len(token) <= VERIFIED_CACHE_MAX_LEN:
            self._remember(token, htyp, claims)
        return checked

    def _remember(self, token: str, htyp: str, claims: dict[str, Any]) -> None:
        """Remember a verified token while it is valid: the oldest entries go first, expired
        ones as soon as a new token comes (so the cache follows the traffic of one token
        lifetime instead of filling up to its size and staying there)."""
        now = self.clock()
        with self._lock:
            while self._verified:
                exp = next(iter(self._verified.values()))[1].get("exp")
                if not (isinstance(exp, int | float) and exp <= now):
                    break
                self._verified.popitem(last=False)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)  # the oldest
            self._verified[token] = (htyp, dict(claims))

    def _check_claims(self, claims: dict[str, Any], audience: str | None,
                      check_exp: bool) -> dict[str, Any]:
        """RFC 7519 §4.1.3-4.1.5: ``aud``, ``exp`` and ``nbf`` (30 s of skew for ``nbf``)."""
        now = self.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise OAuthError("invalid_token", "token has no expiry")
        if check_exp and now >= exp:
            raise OAuthError("invalid_token", "token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + 30 < nbf:
            raise OAuthError("invalid_token", "token not yet valid")
        if audience is not None:
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if audience not in auds:
                raise OAuthError("invalid_token", "wrong audience")
        return claims
