"""Every OIDC failure preset is refused by Authlib's ID token validation (OIDC Core §3.1.3.7)
and by PyJWT, keys taken from the IdP's published JWKS; the genuine token minted the same way
is accepted by both."""

from __future__ import annotations

import warnings
from typing import Any

import joserfc.errors
import jwt
import pytest
import requests

from idp.testing import IdpServer, KitError
from idp.testing.oidc_presets import PRESETS

CLIENT = "demo-web"
NONCE = "n-0S6_WzA2Mj"
# PyJWT checks no nonce (the application compares it): that preset is Authlib's to refuse
PYJWT = [n for n in PRESETS if n != "wrong_nonce"]


def authlib_validate(idp: IdpServer, token: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # authlib.jose is deprecated in favour of joserfc
        from authlib.jose import JsonWebKey, JsonWebToken
        from authlib.oidc.core import CodeIDToken

    jwks = JsonWebKey.import_key_set(requests.get(idp.url + "/oauth2/jwks", timeout=5).json())
    claims = JsonWebToken(["RS256"]).decode(
        token, jwks, claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": idp.issuer}},
        claims_params={"nonce": NONCE, "client_id": CLIENT})
    claims.validate()
    return dict(claims)


def pyjwt_validate(idp: IdpServer, token: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(idp.url + "/oauth2/jwks").get_signing_key_from_jwt(token)
    out: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], audience=CLIENT,
                                     issuer=idp.issuer,
                                     options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    return out


def test_genuine_token_is_accepted_by_authlib_and_pyjwt(idp_server: IdpServer) -> None:
    token = idp_server.id_token(CLIENT, "alice", nonce=NONCE)
    assert authlib_validate(idp_server, token)["sub"] == pyjwt_validate(idp_server, token)["sub"]


@pytest.mark.parametrize("preset", list(PRESETS), ids=[f"authlib-refuses-{n}" for n in PRESETS])
def test_authlib_refuses_preset(idp_server: IdpServer, preset: str) -> None:
    token = idp_server.id_token(CLIENT, "alice", nonce=NONCE, preset=preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.jose.errors import JoseError

    # Authlib's OIDC claims raise joserfc's errors since its move to joserfc; its key set
    # answers an unknown kid with ValueError("Key not found")
    with pytest.raises((JoseError, joserfc.errors.JoseError, ValueError)):
        authlib_validate(idp_server, token)


@pytest.mark.parametrize("preset", PYJWT, ids=[f"pyjwt-refuses-{n}" for n in PYJWT])
def test_pyjwt_refuses_preset(idp_server: IdpServer, preset: str) -> None:
    token = idp_server.id_token(CLIENT, "alice", nonce=NONCE, preset=preset)
    with pytest.raises(jwt.PyJWTError):
        pyjwt_validate(idp_server, token)


def test_our_own_userinfo_refuses_an_alg_none_access_token(idp_server: IdpServer) -> None:
    token = idp_server.id_token(CLIENT, "alice", preset="alg_none")
    resp = requests.get(idp_server.url + "/oauth2/userinfo", timeout=5,
                        headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_every_preset_documents_its_attack() -> None:
    for preset in PRESETS.values():
        assert preset.attack and preset.make.__doc__, preset.name


def test_unknown_preset_is_refused(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="unknown OIDC preset"):
        idp_server.id_token(CLIENT, "alice", preset="alg_rot13")
