"""Factor secrets encrypted at rest: AES-256-GCM (NIST SP 800-38D) under rotatable keys.

Each configured key (a string of ≥32 characters, ``mfa.encryption_keys``) is stretched with
HKDF-SHA256 (RFC 5869) into a 256-bit key; its ID is the first 8 hex digits of a SHA-256 of
that key.  The first key encrypts; every key decrypts, so a key is rotated by putting a new
one first, running ``idp users mfa rekey`` (or letting records be rewritten on their next
change) and then dropping the old one.  The associated data binds a ciphertext to its person
and factor, so a secret copied into another record does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp.errors import IdpError

VERSION = "v1"


class SecretBoxError(IdpError):
    """A ciphertext that no configured key opens (or that is not one): a key was dropped
    before ``idp users mfa rekey`` ran, or the file was changed."""

    code = "mfa_key_error"
    description = "a second factor cannot be read"


def _derive(material: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"idp mfa secrets v1").derive(material.encode())


class SecretBox:
    """Encrypt with the first key, decrypt with any."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys: list[tuple[str, AESGCM]] = []
        for material in keys:
            raw = _derive(material)
            self._keys.append((hashlib.sha256(raw).hexdigest()[:8], AESGCM(raw)))

    @property
    def current_kid(self) -> str:
        return self._keys[0][0]

    def seal(self, plaintext: bytes, aad: str) -> str:
        """``v1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>``; a fresh 96-bit nonce each time."""
        kid, aead = self._keys[0]
        nonce = os.urandom(12)
        blob = nonce + aead.encrypt(nonce, plaintext, aad.encode())
        return f"{VERSION}.{kid}.{base64.urlsafe_b64encode(blob).decode().rstrip('=')}"

    def open(self, sealed: str, aad: str) -> bytes:
        try:
            version, kid, body = sealed.split(".", 2)
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError as exc:
            raise SecretBoxError(debug="not a sealed secret") from exc
        if version != VERSION or len(blob) < 12 + 16:
            raise SecretBoxError(debug="not a sealed secret")
        for k, aead in self._keys:
            if k == kid:
                try:
                    return aead.decrypt(blob[:12], blob[12:], aad.encode())
                except InvalidTag as exc:
                    raise SecretBoxError(debug="secret does not decrypt") from exc
        raise SecretBoxError(debug=f"no configured key `{kid}`")

    def is_current(self, sealed: str) -> bool:
        return sealed.split(".", 2)[1:2] == [self.current_kid]
