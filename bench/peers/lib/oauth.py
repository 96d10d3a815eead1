"""The OAuth side of the kit: HTTP Basic client authentication, client_credentials grants
(RFC 6749 §4.4) made before the clock starts, and the full check of one access token: a JWT's
signature verified against the issuer's JWKS (RFC 7515, RFC 7518 §3.3 and §3.4) and its
claims read, or an opaque token introspected (RFC 7662 §2)."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

GRANT = "grant_type=client_credentials&scope=roles"


def basic(client_id: str, secret: str) -> str:
    """HTTP Basic client authentication (RFC 6749 §2.3.1)."""
    pair = f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def post_form(url: str, body: str, auth: str) -> dict[str, Any]:
    req = urllib.request.Request(url, body.encode(), {
        "Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def mint(token_url: str, auth: str, n: int) -> list[str]:
    """n distinct access tokens from client_credentials grants (4 keep-alive connections)."""
    url = urllib.parse.urlsplit(token_url)
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}

    def some(count: int) -> list[str]:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        out = []
        for _ in range(count):
            conn.request("POST", url.path, GRANT, headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit(f"{token_url}: HTTP {r.status} {body[:200]!r}")
            out.append(json.loads(body)["access_token"])
        conn.close()
        return out
    with ThreadPoolExecutor(4) as pool:
        tokens = [t for part in pool.map(some, [n // 4 + (i < n % 4) for i in range(4)])
                  for t in part]
    if len(set(tokens)) != n:
        raise SystemExit(f"{token_url} gave {n - len(set(tokens))} repeated tokens")
    return tokens


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _int(part: str) -> int:
    return int.from_bytes(_b64(part), "big")


def verify_jwt(token: str, jwks_url: str, issuer: str) -> dict[str, Any]:
    """Verify a JWS compact access token against the issuer's JWKS (RS256 or ES256) and check
    ``iss`` and ``exp``; return its header and claims."""
    head_b64, claims_b64, sig_b64 = token.split(".")
    header = json.loads(_b64(head_b64))
    claims = json.loads(_b64(claims_b64))
    keys = [k for k in get_json(jwks_url)["keys"] if k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        raise SystemExit(f"no single key `{header.get('kid')}` in {jwks_url}")
    jwk, signed, sig = keys[0], f"{head_b64}.{claims_b64}".encode(), _b64(sig_b64)
    try:
        if header["alg"] == "RS256":
            rsa_key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
            rsa_key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
        elif header["alg"] == "ES256":
            ec_key = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]),
                                                   ec.SECP256R1()).public_key()
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                       int.from_bytes(sig[32:], "big"))
            ec_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        else:
            raise SystemExit(f"unexpected alg {header['alg']}")
    except InvalidSignature:
        raise SystemExit(f"the access token's signature does not verify ({jwks_url})") from None
    if claims.get("iss") != issuer or not claims.get("exp", 0) > time.time():
        raise SystemExit(f"unexpected claims: {claims}")
    return {"header": header, "claims": claims}


def describe(token_url: str, introspect_url: str, jwks_url: str, issuer: str, auth: str,
             expect_format: str) -> dict[str, Any]:
    """Check one grant's answer in full: a JWT verified, an opaque token introspected."""
    answer = post_form(token_url, GRANT, auth)
    token = answer["access_token"]
    info: dict[str, Any] = {"response": sorted(answer), "token_type": answer.get("token_type"),
                            "token_bytes": len(token)}
    if expect_format == "jwt":
        if token.count(".") != 2:
            raise SystemExit(f"{token_url} gave no JWT: {token[:40]}")
        info.update(verify_jwt(token, jwks_url, issuer))
    else:
        if token.count(".") == 2:
            raise SystemExit(f"{token_url} gave a JWT where an opaque token was asked for")
        found = post_form(introspect_url, "token=" + urllib.parse.quote(token, safe=""), auth)
        if found.get("active") is not True:
            raise SystemExit(f"{introspect_url} does not know its own token: {found}")
        info["introspection"] = found
    return info
