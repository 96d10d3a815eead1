"""idp.oidc.jws against two independent JOSE implementations (joserfc, PyJWT): the same
tokens are accepted and refused, and what RFC 7515 §5.2 / RFC 8725 refuse is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from idp.keys import Alg
from idp.oidc.jws import BadSignature, JwsInvalid, PublicKey, verify_compact

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLAIMS = {"iss": "https://idp.example", "sub": "alice", "exp": 2_000_000_000, "jti": "j1",
          "aud": ["rs"], "scope": "openid roles", "n": 1.5, "u": "é\u2028"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def sign(alg: Alg, claims: Any = CLAIMS, header: dict[str, Any] | None = None) -> str:
    key = RSAKey.import_key(RSA_KEY) if alg == "RS256" else ECKey.import_key(EC_KEY)
    head = {"alg": alg, "kid": "k1", "typ": "at+jwt", **(header or {})}
    if isinstance(claims, dict):
        return jose_jwt.encode(head, claims, key, algorithms=[alg])
    # a payload that is not a claims set: sign the bytes with PyJWT's JWS layer
    pem_key = RSA_KEY if alg == "RS256" else EC_KEY
    return pyjwt.api_jws.encode(json.dumps(claims).encode(), pem_key, algorithm=alg,
                                headers=head)


def select_for(alg: Alg) -> Any:
    key: PublicKey = RSA_KEY.public_key() if alg == "RS256" else EC_KEY.public_key()
    return lambda header: (alg, key)


def ours(token: str, alg: Alg) -> dict[str, Any] | None:
    try:
        return verify_compact(token, select_for(alg))[1]
    except JwsInvalid:
        return None


def joserfc_accepts(token: str, alg: Alg) -> bool:
    key = RSAKey.import_key(RSA_KEY.public_key()) if alg == "RS256" else \
        ECKey.import_key(EC_KEY.public_key())
    try:
        jose_jwt.decode(token, key, algorithms=[alg])
        return True
    except (JoseError, ValueError):
        return False


def pyjwt_accepts(token: str, alg: Alg) -> bool:
    key = RSA_KEY.public_key() if alg == "RS256" else EC_KEY.public_key()
    try:
        pyjwt.api_jws.decode(token, key, algorithms=[alg])
        return True
    except pyjwt.PyJWTError:
        return False


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_signed_by_joserfc_verify_with_the_same_claims(alg: Alg) -> None:
    token = sign(alg)
    header, claims = verify_compact(token, select_for(alg))
    assert claims == CLAIMS == jose_jwt.decode(token, RSAKey.import_key(RSA_KEY.public_key())
                                               if alg == "RS256" else
                                               ECKey.import_key(EC_KEY.public_key()),
                                               algorithms=[alg]).claims
    assert header == {"alg": alg, "kid": "k1", "typ": "at+jwt"}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_every_single_character_change_is_judged_as_joserfc_and_pyjwt_judge_it(alg: Alg
                                                                                ) -> None:
    """Differential: replace each character of a valid token by others (base64url letters,
    padding, characters outside the alphabet, a dot); our verdict matches both libraries'."""
    token = sign(alg)
    checked = refused = 0
    for i, ch in enumerate(token):
        for repl in {"A", "a", "_", "-", "=", "+", "/", ".", " "} - {ch}:
            mutated = token[:i] + repl + token[i + 1:]
            mine = ours(mutated, alg) is not None
            assert mine == joserfc_accepts(mutated, alg) == pyjwt_accepts(mutated, alg), \
                (i, repl, mutated)
            checked += 1
            refused += not mine
    assert checked > 1000 and refused > checked * 0.9


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_changed_payload_is_a_bad_signature(alg: Alg) -> None:
    head, _, sig = sign(alg).split(".")
    forged = b64(json.dumps({**CLAIMS, "sub": "root"}).encode())
    with pytest.raises(BadSignature):
        verify_compact(f"{head}.{forged}.{sig}", select_for(alg))


def test_a_signature_by_another_key_is_refused() -> None:
    token = jose_jwt.encode({"alg": "RS256", "kid": "k1"}, CLAIMS,
                            RSAKey.import_key(OTHER_RSA), algorithms=["RS256"])
    with pytest.raises(BadSignature):
        verify_compact(token, select_for("RS256"))


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", "RS512", None])
def test_the_header_cannot_choose_the_algorithm_rfc8725_3_1(alg: str | None) -> None:
    """The key decides RS256; a header naming anything else is refused, signed or not
    (including HS256 keyed with the public key: the algorithm-confusion attack)."""
    head = b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
    body = b64(json.dumps(CLAIMS).encode())
    for sig in ("", b64(b"x" * 256)):
        with pytest.raises(JwsInvalid):
            verify_compact(f"{head}.{body}.{sig}", select_for("RS256"))


def test_an_es256_signature_must_be_raw_r_s_not_der() -> None:
    head, body, sig = sign("ES256").split(".")
    r, s = int.from_bytes(unb64(sig)[:32], "big"), int.from_bytes(unb64(sig)[32:], "big")
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    der = encode_dss_signature(r, s)
    assert decode_dss_signature(der) == (r, s)
    with pytest.raises(BadSignature):
        verify_compact(f"{head}.{body}.{b64(der)}", select_for("ES256"))
    assert not joserfc_accepts(f"{head}.{body}.{b64(der)}", "ES256")


@pytest.mark.parametrize("extra", [{"crit": ["exp"]}, {"crit": ["b64"], "b64": False},
                                   {"b64": True}])
def test_crit_and_unencoded_payload_headers_are_refused_rfc7515_4_1_11(extra: dict[str, Any]
                                                                       ) -> None:
    head = b64(json.dumps({"alg": "RS256", "kid": "k1", **extra}).encode())
    body = b64(json.dumps(CLAIMS).encode())
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    sig = b64(RSA_KEY.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()))
    with pytest.raises(JwsInvalid, match="unsupported header"):
        verify_compact(f"{head}.{body}.{sig}", select_for("RS256"))


@pytest.mark.parametrize("payload", [["a", "b"], "text", 7, None])
def test_a_signed_payload_that_is_not_a_json_object_is_refused_rfc7519_7_2(payload: Any
                                                                           ) -> None:
    token = sign("RS256", payload)
    with pytest.raises(JwsInvalid, match="not a JSON object"):
        verify_compact(token, select_for("RS256"))


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "..", "eyJ9.e30.", "@@.@@.@@"])
def test_malformed_compact_serialisations_are_refused(token: str) -> None:
    with pytest.raises(JwsInvalid):
        verify_compact(token, select_for("RS256"))


def test_padding_in_any_part_is_refused_rfc7515_2() -> None:
    head, body, sig = sign("RS256").split(".")
    for variant in (f"{head}=.{body}.{sig}", f"{head}.{body}==.{sig}", f"{head}.{body}.{sig}="):
        with pytest.raises(JwsInvalid):
            verify_compact(variant, select_for("RS256"))


def test_the_selector_sees_the_parsed_header_and_may_refuse_it() -> None:
    seen: list[dict[str, Any]] = []

    class Refused(Exception):
        pass

    def select(header: dict[str, Any]) -> Any:
        seen.append(header)
        raise Refused

    with pytest.raises(Refused):
        verify_compact(sign("ES256"), select)
    assert seen == [{"alg": "ES256", "kid": "k1", "typ": "at+jwt"}]


def test_a_key_of_the_wrong_type_for_the_algorithm_is_refused() -> None:
    with pytest.raises(JwsInvalid, match="does not match"):
        verify_compact(sign("RS256"), lambda header: ("RS256", EC_KEY.public_key()))


def test_a_non_canonical_base64_last_character_is_refused_rfc4648_3_5() -> None:
    """Two strings that decode to the same signature: only the canonical one verifies (as
    joserfc decides), so a token has one spelling."""
    head, body, sig = sign("RS256").split(".")
    assert len(sig) % 4 == 2  # 256 bytes: the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = sig[:-1] + alphabet[alphabet.index(sig[-1]) | 1]
    assert unb64(twin) == unb64(sig) and twin != sig
    assert ours(f"{head}.{body}.{sig}", "RS256") == CLAIMS
    assert ours(f"{head}.{body}.{twin}", "RS256") is None
    assert not joserfc_accepts(f"{head}.{body}.{twin}", "RS256")


@pytest.mark.parametrize("part", ["header", "payload"])
def test_deeply_nested_json_is_refused_not_a_crash(part: str) -> None:
    """A header (or a validly signed payload) of thousands of nested arrays makes Python's
    JSON parser raise RecursionError: refused as malformed, never a 500."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    deep = b64(b"[" * 6000 + b"]" * 6000)
    head = deep if part == "header" else b64(b'{"alg":"RS256","kid":"k1"}')
    body = deep if part == "payload" else b64(b"{}")
    sig = b64(RSA_KEY.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()))
    with pytest.raises(JwsInvalid, match="not JSON"):
        verify_compact(f"{head}.{body}.{sig}", select_for("RS256"))


def test_a_deeply_nested_token_gets_invalid_token_from_the_signer(tmp_path: Any) -> None:
    from idp.keys import KeyRing, init_keys
    from idp.oidc.errors import OAuthError
    from idp.oidc.jose import AT_TYP, TokenSigner, unverified_claims, unverified_header

    init_keys(tmp_path, "idp")
    signer = TokenSigner(KeyRing.load(tmp_path), "https://idp.example", lambda: 0.0)
    deep = b64(b"[" * 6000 + b"]" * 6000)
    for token in (f"{deep}.e30.AAAA", f"e30.{deep}.AAAA"):
        with pytest.raises(OAuthError, match="malformed token|unsupported"):
            signer.verify(token, typ=AT_TYP, audience=None)
        with pytest.raises(OAuthError, match="malformed token"):
            unverified_header(token) if token.startswith(deep) else unverified_claims(token)
