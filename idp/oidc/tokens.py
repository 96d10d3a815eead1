"""Issuing tokens: JWT access tokens (RFC 9068 §2) or opaque ones (per client,
``access_token_format``), ID tokens (OIDC Core §2, §3.1.3.6) and refresh tokens in families
(RFC 9700 §4.14.2: rotation, reuse revokes the family)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.oidc.claims import Grantee, acr_of, half_hash
from idp.oidc.clients import Client
from idp.oidc.core import Core
from idp.oidc.errors import OAuthError
from idp.oidc.jose import AT_TYP
from idp.oidc.state import OPAQUE_PREFIX, Spend, tagged
from idp.store import Write, new_id


@dataclass
class Grant:
    """What a token response is issued for."""

    client: Client
    scopes: list[str]
    grantee: Grantee | None = None
    nonce: str | None = None
    family: str | None = None
    family_expires: int = 0
    refresh: bool = False
    spend: Spend | None = None  # the code or token redeemed, spent when the response is stored


def access_claims(core: Core, g: Grant) -> dict[str, Any]:
    """What an access token says (RFC 9068 §2.2), whatever its format."""
    now = core.now()
    claims: dict[str, Any] = {
        "iss": core.issuer, "aud": core.audience, "iat": now,
        "exp": now + core.config.access_token_ttl, "jti": new_id(),
        "client_id": g.client.client_id, "scope": " ".join(g.scopes),
    }
    if g.grantee is None:
        claims["sub"] = g.client.client_id
        if "roles" in g.scopes:  # the roles the mapping gives the client itself (workloads)
            claims["roles"] = core.claims.workload_roles(g.client.client_id)
    else:
        claims.update(core.claims.user_claims(g.client, g.grantee, g.scopes))
        claims.update(sub=core.claims.subject(g.client, g.grantee),
                      auth_time=g.grantee.auth_time, acr=acr_of(g.grantee.amr), amr=g.grantee.amr)
        if g.grantee.sid:
            claims["sid"] = g.grantee.sid
    if g.family:
        claims["fid"] = g.family
    return claims


def access_token(core: Core, g: Grant) -> tuple[str, dict[str, Any]]:
    """A JWT access token (RFC 9068 §2) and its claims."""
    claims = access_claims(core, g)
    alg = g.client.config.access_token_alg or core.config.access_token_alg
    return core.signer.sign(claims, alg=alg, typ=AT_TYP), claims


def opaque_token(core: Core, g: Grant) -> tuple[str, Write]:
    """An opaque access token (a reference, RFC 6749 §1.4) and the one write that stores its
    claims under its SHA-256 for as long as it lives (RFC 7662 §2.2 answers from them)."""
    token = OPAQUE_PREFIX + new_id(32)
    return token, core.state.opaque_write(token, access_claims(core, g),
                                          core.config.access_token_ttl)


def id_token(core: Core, g: Grant, at: str) -> str:
    assert g.grantee is not None
    now = core.now()
    claims: dict[str, Any] = {
        "iss": core.issuer, "sub": core.claims.subject(g.client, g.grantee),
        "aud": g.client.client_id, "azp": g.client.client_id, "iat": now,
        "exp": now + core.config.id_token_ttl, "auth_time": g.grantee.auth_time,
        "acr": acr_of(g.grantee.amr), "amr": g.grantee.amr,
        "at_hash": half_hash(at, core.config.id_token_alg),
    }
    if g.nonce:
        claims["nonce"] = g.nonce
    if g.grantee.sid:
        claims["sid"] = g.grantee.sid
    claims.update(core.claims.user_claims(g.client, g.grantee, g.scopes))
    return core.signer.sign(claims, alg=core.config.id_token_alg)


def issue(core: Core, g: Grant) -> dict[str, Any]:
    """The token response body (RFC 6749 §5.1, OIDC Core §3.1.3.3)."""
    opaque: Write | None = None
    if g.client.config.access_token_format == "opaque":
        at, opaque = opaque_token(core, g)
        # its key has no family tag, so it cannot join the swap below: it is written first,
        # and deleted if the grant is then refused (a token never handed out)
        core.state.commit(None, [opaque])
    else:
        at, _ = access_token(core, g)
    body: dict[str, Any] = {"access_token": at, "token_type": "Bearer",
                            "expires_in": core.config.access_token_ttl,
                            "scope": " ".join(g.scopes)}
    if g.grantee is not None and "openid" in g.scopes:
        body["id_token"] = id_token(core, g, at)
    writes: list[Write] = []
    if g.refresh and g.grantee is not None and g.family:
        body["refresh_token"], write = new_refresh(core, g)
        writes.append(write)
    if not core.state.commit(g.spend, writes):
        if opaque is not None:
            core.state.drop_opaque(at)
        # spent between our read and now: a concurrent redemption is a reuse (RFC 9700 §4.14.2)
        if g.family:
            core.state.revoke_family(g.family, max(0, g.family_expires - core.now())
                                     + core.config.access_token_ttl)
        raise OAuthError("invalid_grant", "the grant was already used",
                         debug=f"concurrent redemption: family {g.family} revoked")
    return body


def new_refresh(core: Core, g: Grant) -> tuple[str, Write]:
    """A new refresh token of the grant's family and the write that stores it (its hash)."""
    assert g.grantee is not None and g.family
    token = tagged(g.family, new_id(32))
    now = core.now()
    record = {"fid": g.family, "fexp": g.family_expires, "client_id": g.client.client_id,
              "scope": g.scopes, "grantee": g.grantee.to_json(), "iat": now}
    ttl = min(core.config.refresh_token_ttl, g.family_expires - now)
    return token, core.state.refresh_write(token, record, ttl)
