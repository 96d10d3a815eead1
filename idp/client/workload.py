"""``idp token``: a workload's web identity token file, kept fresh (the Kubernetes
service-account pattern: the SDK reads ``AWS_WEB_IDENTITY_TOKEN_FILE`` and calls
``AssumeRoleWithWebIdentity`` for ``AWS_ROLE_ARN`` itself).

The token is the client's client-credentials access token (RFC 6749 §4.4), the client
authenticated with its secret (``client_secret_basic``, RFC 6749 §2.3.1) or a signed JWT
(``private_key_jwt``, RFC 7523 §2.2, OIDC Core §9)."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from idp.client.http import ClientError, get_json, oauth_post

RENEW_AT = 0.5
"""A token is replaced when half its lifetime is gone (the SDK reads the file on each
``AssumeRoleWithWebIdentity``; kubelet renews service-account tokens at 80%)."""


def _basic(client_id: str, secret: str) -> str:
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _assertion(key_file: str, kid: str | None, client_id: str, audience: str) -> str:
    """A ``private_key_jwt`` client assertion (RFC 7523 §3): RS256 or ES256 by key type."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    except ImportError:
        raise ClientError("--private-key needs the `cryptography` package") from None
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    now = int(time.time())
    header: dict[str, Any] = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
              "exp": now + 120, "jti": secrets.token_urlsafe(16)}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode()))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = utils.decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ClientError("--private-key must be an RSA or EC P-256 key")
    return signing + "." + b64(sig)


def fetch_token(args: argparse.Namespace) -> dict[str, Any]:
    meta = get_json(args.issuer.rstrip("/") + "/.well-known/openid-configuration")
    token_url = str(meta.get("token_endpoint", ""))
    fields = {"grant_type": "client_credentials", "scope": args.scope}
    headers: dict[str, str] = {}
    if args.client_secret_file:
        try:
            secret = Path(args.client_secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ClientError(f"cannot read {args.client_secret_file}: {exc.strerror}") \
                from None
        headers["Authorization"] = _basic(args.client_id, secret)
    else:
        fields.update(client_id=args.client_id, client_assertion_type=(
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            client_assertion=_assertion(args.private_key, args.key_id, args.client_id,
                                        token_url))
    return oauth_post(token_url, fields, headers)


def write_token(path: Path, token: str) -> None:
    """Replace the token file atomically (0600): the SDK never reads half a token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".token-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def keep_token_file(args: argparse.Namespace, say: Callable[[str], None],
                    sleep: Callable[[float], None] = time.sleep) -> int:
    """Write the token once, or with ``--refresh`` forever, renewing at :data:`RENEW_AT` of
    its lifetime; a failed renewal is retried (the old token stays until it expires)."""
    path = Path(args.write)
    while True:
        try:
            answer = fetch_token(args)
        except ClientError as exc:
            if not args.refresh:
                raise
            say(f"idp token: {exc.message} (retrying in 30 s)")
            sleep(30)
            continue
        write_token(path, str(answer["access_token"]))
        if not args.refresh:
            say(f"wrote {path}")
            return 0
        sleep(max(5.0, float(answer.get("expires_in", 900)) * RENEW_AT))
