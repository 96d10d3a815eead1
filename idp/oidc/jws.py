"""Validating a compact JWS signed by one of our own keys (RFC 7515 §5.2), on `cryptography`.

:class:`~idp.oidc.jose.TokenSigner` verifies every access token an introspection, a userinfo
call or a revocation presents; a token seen for the first time costs a signature check.  This
module does exactly the checks of RFC 7515 §5.2 that apply to the two algorithms we sign with
(RFC 7518 §3.3 RS256, §3.4 ES256) and nothing else, without a general JOSE library's
per-call work (the key and the algorithm are already fixed by the caller: the algorithm comes
from our key, never from the header, RFC 8725 §3.1).  Anything this module does not
understand is refused rather than skipped:

- each of the three parts must be base64url without padding (RFC 7515 §2, §5.2 steps 2, 7);
- the header must be a JSON object whose ``alg`` is the key's algorithm; a ``crit`` header
  (§4.1.11: the recipient must understand every listed extension) and ``b64`` (RFC 7797, an
  unencoded payload) are refused: we never issue them;
- an ES256 signature is the 64-byte ``R || S`` of RFC 7518 §3.4, not DER;
- the payload must be a JSON object (RFC 7519 §7.2 step 10).

The checks of the claims (``iss``, ``exp``, ``aud``…) stay with the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from idp.keys import Alg

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA = ec.ECDSA(hashes.SHA256())


class JwsInvalid(ValueError):
    """The JWS is malformed, uses another algorithm, or its signature does not verify."""


class BadSignature(JwsInvalid):
    """The JWS is well formed but its signature does not verify."""


def b64url_decode(part: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): any other character is refused, and
    so is a last character whose unused low bits are not zero (RFC 4648 §3.5: one encoding
    per value, as joserfc also requires)."""
    rest = len(part) % 4
    if not _B64URL.fullmatch(part) or rest == 1 or (
            rest and _ALPHABET.index(part[-1]) & (0b1111 if rest == 2 else 0b11)):
        raise JwsInvalid("not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - excluded by the regex
        raise JwsInvalid("not base64url") from exc


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting: refused
        raise JwsInvalid(f"{what} is not JSON") from exc
    if not isinstance(data, dict):
        raise JwsInvalid(f"{what} is not a JSON object")
    return data


def verify_compact(token: str, select: Callable[[dict[str, Any]], tuple[Alg, PublicKey]]
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, claims)`` of a compact JWS (RFC 7515 §5.2), or :class:`JwsInvalid`.

    ``select`` is given the parsed header and names the algorithm and the key to verify
    with (it may raise to refuse the header); the header's ``alg`` must be that algorithm."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsInvalid("not a compact JWS")
    head_b64, body_b64, sig_b64 = parts
    header = _json_object(b64url_decode(head_b64), "header")
    alg, key = select(header)
    if header.get("alg") != alg:
        raise JwsInvalid("wrong algorithm")
    if "crit" in header or "b64" in header:
        raise JwsInvalid("unsupported header parameter")
    signature = b64url_decode(sig_b64)
    signed = f"{head_b64}.{body_b64}".encode("ascii")
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, _PKCS1, _SHA256)
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise BadSignature("an ES256 signature is 64 bytes")
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signed, _ECDSA)
        else:
            raise JwsInvalid("the key does not match the algorithm")
    except InvalidSignature as exc:
        raise BadSignature("bad signature") from exc
    return header, _json_object(b64url_decode(body_b64), "payload")
