"""Headless ID tokens and access tokens, as ``/oauth2/token`` would issue them.

Tokens are made by :mod:`idp.oidc.tokens` (the provider's claims code: the released claims of
each scope, the ``roles`` the IAM mapping gives, pairwise subjects) and signed by the
provider's own :class:`~idp.oidc.jose.TokenSigner` with the active key.  ``claims`` overrides
are merged into the payload and the token is signed again with the same signer (a value of
``None`` removes a claim).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from idp.oidc.claims import Grantee
from idp.oidc.clients import Client
from idp.oidc.core import Core
from idp.oidc.jose import AT_TYP
from idp.oidc.tokens import Grant
from idp.oidc.tokens import access_token as issue_access_token
from idp.oidc.tokens import id_token as issue_id_token
from idp.testing.errors import KitError

if TYPE_CHECKING:
    from idp.app import Components

DEFAULT_SCOPES = ("openid", "profile", "email", "groups", "roles")


def oidc_core(comps: Components) -> Core:
    core: Core = comps.extras["oidc"].core
    return core


def client_of(core: Core, client_id: str) -> Client:
    client = core.clients.get(client_id)
    if client is None:
        raise KitError(f"unknown OIDC client `{client_id}`")
    return client


def grantee_of(comps: Components, username: str, *, mfa: bool = False) -> Grantee:
    """The person as a session shows them: ``amr`` ``pwd``, with ``otp`` and ``mfa`` after an
    authenticator code (RFC 8176 §2), which makes ``acr`` REFEDS MFA."""
    identity = comps.directory.lookup(username)
    if identity is None:
        raise KitError(f"no user `{username}` in the kit's directory")
    return Grantee(identity.username, identity.subject, list(identity.groups),
                   dict(identity.attributes), int(time.time()),
                   ["pwd", "otp", "mfa"] if mfa else ["pwd"], "")


def grant(comps: Components, client_id: str, user: str | None, scopes: list[str] | None,
          nonce: str | None, *, mfa: bool = False) -> Grant:
    core = oidc_core(comps)
    client = client_of(core, client_id)
    allowed = client.config.scopes
    wanted = list(scopes) if scopes is not None else [s for s in DEFAULT_SCOPES if s in allowed]
    refused = [s for s in wanted if s not in allowed]
    if refused:
        raise KitError(f"client `{client_id}` may not ask for scope `{refused[0]}`")
    grantee = grantee_of(comps, user, mfa=mfa) if user is not None else None
    return Grant(client, wanted, grantee, nonce)


def payload(token: str) -> dict[str, Any]:
    """The claims of a JWS we signed (not verified: for re-signing our own tokens)."""
    part = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def merged(claims: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(claims)
    for k, v in (overrides or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def id_token(comps: Components, client_id: str, user: str, *,
             claims: Mapping[str, Any] | None = None, scopes: list[str] | None = None,
             nonce: str | None = None, mfa: bool = False) -> str:
    """An ID token (OIDC Core §2, §3.1.3.6) for ``user`` at ``client_id``."""
    core = oidc_core(comps)
    g = grant(comps, client_id, user, scopes, nonce, mfa=mfa)
    if "openid" not in g.scopes:
        raise KitError("an ID token needs the `openid` scope")
    at, _ = issue_access_token(core, g)
    token = issue_id_token(core, g, at)
    if claims:
        token = core.signer.sign(merged(payload(token), claims), alg=core.config.id_token_alg)
    return token


def access_token(comps: Components, client_id: str, user: str | None = None, *,
                 claims: Mapping[str, Any] | None = None, scopes: list[str] | None = None
                 ) -> str:
    """A JWT access token (RFC 9068 §2) for ``user`` (or the client itself, as a client
    credentials grant gives, when ``user`` is ``None``)."""
    core = oidc_core(comps)
    g = grant(comps, client_id, user, scopes, None)
    token, body = issue_access_token(core, g)
    if claims:
        alg = g.client.config.access_token_alg or core.config.access_token_alg
        token = core.signer.sign(merged(body, claims), alg=alg, typ=AT_TYP)
    return token
