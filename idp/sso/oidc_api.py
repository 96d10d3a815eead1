"""The SSO OIDC API (botocore model ``sso-oidc`` 2019-06-10; "IAM Identity Center OIDC API
Reference") at ``<issuer>/sso-oidc``: JSON in, JSON out, translated to this IdP's own OAuth
endpoints — ``RegisterClient`` (RFC 7591 §3 in spirit), ``StartDeviceAuthorization`` (the device
flow, RFC 8628 §3.1-3.2) and ``CreateToken`` (the token endpoint, RFC 6749 §3.2: device code,
refresh token, authorization code with PKCE).  The grants, one-time values, refresh-token
rotation and audit records are the OIDC provider's; nothing here issues a token itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from idp.audit import RequestInfo
from idp.oidc.core import JsonResult, OAuthRequest
from idp.oidc.provider import OidcProvider
from idp.sso.errors import SsoError, invalid_request, oauth_error
from idp.sso.registration import Registrations, registered, unknown_client
from idp.sso.sessions import SsoSessions

# CreateToken members → token endpoint parameters (RFC 6749 §4.1.3, §6; RFC 8628 §3.4)
_TOKEN_PARAMS = (("deviceCode", "device_code"), ("code", "code"),
                 ("refreshToken", "refresh_token"), ("redirectUri", "redirect_uri"),
                 ("codeVerifier", "code_verifier"))
_MAX_STRING = 4096


def _string(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid_request(f"`{name}` is required")
        return None
    if not isinstance(value, str) or len(value) > _MAX_STRING or (required and not value):
        raise invalid_request(f"`{name}` must be a non-empty string")
    return value


def _fail(result: JsonResult) -> SsoError:
    """The SSO OIDC exception for an OAuth error response of the provider."""
    return oauth_error(str(result.body.get("error", "invalid_request")),
                       str(result.body.get("error_description", "")))


class SsoOidc:
    """The three SSO OIDC operations, over one OIDC provider."""

    def __init__(self, provider: OidcProvider, registrations: Registrations,
                 sessions: SsoSessions) -> None:
        self.provider = provider
        self.core = provider.core
        self.registrations = registrations
        self.sessions = sessions
        self.start_url = self.core.url("/start")

    def register_client(self, body: dict[str, Any], info: RequestInfo) -> dict[str, Any]:
        """``RegisterClient`` (``POST /client/register``)."""
        try:
            reg = self.registrations.register(body, info.source_ip)
        except SsoError as exc:
            self.core.audit("SsoRegisterClientRefused", info, error=exc)
            raise
        self.core.audit("SsoRegisterClient", info, client_id=reg.client_id,
                        clientName=str(body.get("clientName"))[:128])
        return {"clientId": reg.client_id, "clientSecret": reg.client_secret,
                "clientIdIssuedAt": reg.issued_at, "clientSecretExpiresAt": reg.expires_at,
                "authorizationEndpoint": self.core.url("/sso-oidc/authorize"),
                "tokenEndpoint": self.core.url("/sso-oidc/token")}

    def _client_params(self, body: dict[str, Any]) -> dict[str, str]:
        """The client's ID and secret (``client_secret_post``); only registered clients use
        this API."""
        cid = _string(body, "clientId", True) or ""
        secret = _string(body, "clientSecret", True) or ""
        if not registered(self.core.clients.get(cid)):
            raise unknown_client(cid)
        return {"client_id": cid, "client_secret": secret}

    def start_url_ok(self, url: str) -> bool:
        """``startUrl`` names this IdP's access portal (``<issuer>/start``, as configured in
        ``sso_start_url``; a trailing ``/`` or ``#/`` as the AWS portal's URLs have)."""
        trimmed = url
        for suffix in ("#/", "#", "/"):
            trimmed = trimmed.removesuffix(suffix)
        return trimmed == self.start_url

    def start_device_authorization(self, body: dict[str, Any],
                                   info: RequestInfo) -> dict[str, Any]:
        """``StartDeviceAuthorization`` (``POST /device_authorization``), RFC 8628 §3.1-3.2."""
        params = self._client_params(body)
        start = _string(body, "startUrl", True) or ""
        if not self.start_url_ok(start):
            raise invalid_request(f"`startUrl` must be {self.start_url}")
        client = self.core.clients.get(params["client_id"])
        assert client is not None
        params["scope"] = " ".join(client.config.scopes)
        result = self.provider.device_authorization(OAuthRequest(params, None, info))
        if result.status != 200:
            raise _fail(result)
        b = result.body
        return {"deviceCode": b["device_code"], "userCode": b["user_code"],
                "verificationUri": b["verification_uri"],
                "verificationUriComplete": b["verification_uri_complete"],
                "expiresIn": b["expires_in"], "interval": b["interval"]}

    def create_token(self, body: dict[str, Any], info: RequestInfo) -> dict[str, Any]:
        """``CreateToken`` (``POST /token``): the token endpoint with the same grant."""
        params = self._client_params(body)
        params["grant_type"] = _string(body, "grantType", True) or ""
        for member, name in _TOKEN_PARAMS:
            value = _string(body, member)
            if value is not None:
                params[name] = value
        scope = body.get("scope")
        if scope is not None:
            if not isinstance(scope, list) or not scope or len(scope) > 16 or \
                    not all(isinstance(s, str) and 0 < len(s) <= 256 for s in scope):
                raise invalid_request("`scope` must be a list of strings")
            params["scope"] = " ".join(scope)
        result = self.provider.token(OAuthRequest(params, None, info))
        if result.status != 200:
            raise _fail(result)
        tokens = result.body
        self._remember(tokens.get("refresh_token"))
        out: dict[str, Any] = {"accessToken": tokens["access_token"], "tokenType": "Bearer",
                               "expiresIn": tokens["expires_in"]}
        if "refresh_token" in tokens:
            out["refreshToken"] = tokens["refresh_token"]
        if "id_token" in tokens:
            out["idToken"] = tokens["id_token"]
        return out

    def _remember(self, refresh: str | None) -> None:
        """Keep who the grant's family speaks for, for the portal (the access token carries
        only ``sub``)."""
        rec = self.core.state.get_refresh(refresh) if refresh else None
        if rec is not None:
            self.sessions.remember(rec["fid"], rec["grantee"], rec["fexp"] - self.core.now())

    def authorize_location(self, args: dict[str, str]) -> str:
        """Where ``GET /sso-oidc/authorize`` sends the browser: ``/oauth2/authorize`` with the
        SDK's ``scopes`` (comma- or space-separated) as the OAuth ``scope``."""
        params = {k: v for k, v in args.items() if k != "scopes"}
        if "scopes" in args and "scope" not in args:
            params["scope"] = " ".join(s for s in args["scopes"].replace(",", " ").split())
        return self.core.url("/oauth2/authorize") + "?" + urlencode(params)
