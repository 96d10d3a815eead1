"""Passkeys and security keys (WebAuthn Level 2, W3C) with py_webauthn.

Registration and authentication ceremonies (WebAuthn §7.1, §7.2): options with a fresh
256-bit challenge kept in the store for 5 minutes and spent once, user verification
preferred, the origin and RP ID of the issuer, and the signature counter checked (§6.1.1: a
counter that does not grow, when either side is non-zero, means a cloned authenticator: the
assertion is refused).  A credential's public key is not secret: it is stored as is.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.store import Store, key

CHALLENGE_TTL = 300
MAX_CREDENTIAL_JSON = 16 * 1024


class PasskeyRefused(Exception):
    """A ceremony that failed: expired challenge, wrong origin, bad signature, cloned key."""


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str
    public_key: str
    sign_count: int
    amr: str  # RFC 8176: hwk for a device-bound key, swk for a synced passkey


class Passkeys:
    def __init__(self, store: Store, issuer: str, rp_name: str) -> None:
        self.store = store
        self.origin = issuer.rstrip("/")
        parts = urlsplit(self.origin)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.rp_id = parts.hostname or ""
        self.rp_name = rp_name

    def _put(self, purpose: str, challenge: bytes) -> None:
        self.store.set(key("mfachal", purpose), challenge, CHALLENGE_TTL)

    def _take(self, purpose: str) -> bytes:
        challenge = self.store.take(key("mfachal", purpose))
        if challenge is None:
            raise PasskeyRefused("no live challenge")
        return challenge

    def registration_options(self, purpose: str, username: str, user_handle: bytes,
                             existing: list[str]) -> str:
        """The ``PublicKeyCredentialCreationOptions`` as JSON (WebAuthn §5.4)."""
        challenge = secrets.token_bytes(32)
        self._put(purpose, challenge)
        opts = generate_registration_options(
            rp_id=self.rp_id, rp_name=self.rp_name, user_name=username, user_id=user_handle,
            challenge=challenge, authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c))
                                 for c in existing])
        return options_to_json(opts)

    def register(self, purpose: str, credential_json: str) -> NewPasskey:
        challenge = self._take(purpose)
        if len(credential_json) > MAX_CREDENTIAL_JSON:
            raise PasskeyRefused("credential too large")
        try:
            v = verify_registration_response(credential=credential_json,
                                             expected_challenge=challenge,
                                             expected_rp_id=self.rp_id,
                                             expected_origin=self.origin)
        except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
            raise PasskeyRefused(f"registration refused: {exc}") from None
        synced = str(getattr(v.credential_device_type, "value", v.credential_device_type))
        return NewPasskey(bytes_to_base64url(v.credential_id),
                          bytes_to_base64url(v.credential_public_key), v.sign_count,
                          "swk" if synced == "multi_device" else "hwk")

    def authentication_options(self, purpose: str, credential_ids: list[str]) -> str:
        """The ``PublicKeyCredentialRequestOptions`` as JSON (WebAuthn §5.5)."""
        challenge = secrets.token_bytes(32)
        self._put(purpose, challenge)
        opts = generate_authentication_options(
            rp_id=self.rp_id, challenge=challenge,
            allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c))
                               for c in credential_ids],
            user_verification=UserVerificationRequirement.PREFERRED)
        return options_to_json(opts)

    def authenticate(self, purpose: str, credential_json: str,
                     stored: dict[str, dict[str, Any]]) -> tuple[str, int]:
        """Check an assertion against the stored credentials (by ID); the credential ID and
        its new sign count."""
        challenge = self._take(purpose)
        if len(credential_json) > MAX_CREDENTIAL_JSON:
            raise PasskeyRefused("credential too large")
        try:
            cred_id = str(json.loads(credential_json)["id"])
        except (ValueError, KeyError, TypeError):
            raise PasskeyRefused("not a credential") from None
        known = stored.get(cred_id)
        if known is None:
            raise PasskeyRefused("unknown credential")
        try:
            v = verify_authentication_response(
                credential=credential_json, expected_challenge=challenge,
                expected_rp_id=self.rp_id, expected_origin=self.origin,
                credential_public_key=base64url_to_bytes(known["public_key"]),
                credential_current_sign_count=int(known["sign_count"]))
        except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
            raise PasskeyRefused(f"assertion refused: {exc}") from None
        return cred_id, v.new_sign_count
