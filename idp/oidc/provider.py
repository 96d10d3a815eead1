"""The OpenID Connect provider: one object per process, one method per endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from idp.audit import Auditor
from idp.config import Config
from idp.keys import KeyRing
from idp.oidc import authorize as authz
from idp.oidc import client_auth, device, endpoints, grants
from idp.oidc.claims import Grantee, People, RoleMapper
from idp.oidc.clients import demo_clients
from idp.oidc.core import Core, JsonResult, OAuthRequest
from idp.oidc.errors import OAuthError
from idp.store import Store, new_id


class OidcProvider:
    """Endpoints of DESIGN.md's ``/oauth2/*`` and discovery, as plain functions of a request."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._discovery = endpoints.discovery(core)

    def discovery(self) -> dict[str, Any]:
        return self._discovery

    def jwks(self, keys: KeyRing) -> dict[str, Any]:
        """Every ``next``, ``active`` and ``retired`` key (RFC 7517 §5)."""
        return keys.jwks()

    def authorize(self, req: OAuthRequest, grantee: Grantee | None) -> authz.Result:
        return authz.authorize(self.core, req, grantee)

    def consent(self, req: OAuthRequest, grantee: Grantee | None, allow: bool) -> authz.Result:
        return authz.consent(self.core, req, grantee, allow)

    def token(self, req: OAuthRequest) -> JsonResult:
        return grants.token_endpoint(self.core, req)

    def userinfo(self, req: OAuthRequest) -> JsonResult:
        return endpoints.userinfo(self.core, req)

    def introspect(self, req: OAuthRequest) -> JsonResult:
        return endpoints.introspect(self.core, req)

    def revoke(self, req: OAuthRequest) -> JsonResult:
        return endpoints.revoke(self.core, req)

    def logout(self, req: OAuthRequest, grantee: Grantee | None) -> endpoints.LogoutDecision:
        return endpoints.logout(self.core, req, grantee)

    def confidential_client(self, req: OAuthRequest, endpoint: str) -> str:
        """The ``client_id`` of a confidential client authenticating at another endpoint of
        this IdP (the STS decision endpoint), with the method it registered, as at
        introspection (RFC 7662 §2.1); ``invalid_client`` (401) otherwise."""
        client = client_auth.authenticate(self.core, req, endpoint)
        if client.public:
            raise OAuthError("invalid_client", "public clients cannot use this endpoint",
                             debug=f"public client `{client.client_id}`")
        return client.client_id

    def device_authorization(self, req: OAuthRequest) -> JsonResult:
        return device.device_authorization(self.core, req)

    def find_device(self, req: OAuthRequest, user_code: str,
                    grantee: Grantee) -> device.PendingDevice:
        return device.find_device(self.core, req, user_code, grantee)

    def answer_device(self, req: OAuthRequest, user_code: str, grantee: Grantee,
                      approve: bool) -> device.PendingDevice:
        return device.answer_device(self.core, req, user_code, grantee, approve)


def build_provider(config: Config, *, keys: KeyRing, store: Store, auditor: Auditor,
                   roles: RoleMapper | None, demo: bool = False,
                   clock: Callable[[], float] = time.time,
                   id_gen: Callable[[], str] = new_id,
                   people: People | None = None) -> OidcProvider:
    """The provider of one process: config clients, plus the demo clients in demo mode only;
    ``people`` (the directory) gives each token the person's current groups."""
    known = {c.client_id for c in config.oidc.clients}
    extra = [c for c in demo_clients() if c.client_id not in known] if demo else []
    core = Core.build(config.issuer, config.oidc, keys=keys, store=store, auditor=auditor,
                      roles=roles, secret=config.secret_key.encode(), extra_clients=extra,
                      clock=clock, id_gen=id_gen, people=people)
    core.mfa_clients = frozenset(config.mfa.require.clients)
    return OidcProvider(core)
