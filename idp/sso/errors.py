"""Errors of the SSO OIDC and SSO portal APIs (botocore models ``sso-oidc`` and ``sso``,
2019-06-10).  Both are REST-JSON: the exception name travels in the ``x-amzn-ErrorType`` header,
which botocore's rest-json parser reads first.  SSO OIDC errors carry the OAuth ``error`` and
``error_description`` members of the model; portal errors carry ``message``."""

from __future__ import annotations

from typing import Any

from idp.errors import IdpError

# OAuth ``error`` values (RFC 6749 §5.2, RFC 8628 §3.5) → SSO OIDC exception, HTTP status
OAUTH_EXCEPTIONS: dict[str, tuple[str, int]] = {
    "invalid_request": ("InvalidRequestException", 400),
    "invalid_client": ("InvalidClientException", 401),
    "invalid_grant": ("InvalidGrantException", 400),
    "unauthorized_client": ("UnauthorizedClientException", 400),
    "unsupported_grant_type": ("UnsupportedGrantTypeException", 400),
    "invalid_scope": ("InvalidScopeException", 400),
    "authorization_pending": ("AuthorizationPendingException", 400),
    "slow_down": ("SlowDownException", 400),
    "access_denied": ("AccessDeniedException", 400),
    "expired_token": ("ExpiredTokenException", 400),
    "invalid_client_metadata": ("InvalidClientMetadataException", 400),
    "invalid_redirect_uri": ("InvalidRedirectUriException", 400),
    "temporarily_unavailable": ("InternalServerException", 503),
    "server_error": ("InternalServerException", 500),
}


class SsoError(IdpError):
    """An AWS exception: ``code`` is its name (``ForbiddenException``).  ``oauth`` is the
    OAuth ``error`` value for SSO OIDC errors; portal errors have none."""

    def __init__(self, code: str, description: str, status: int, *, oauth: str | None = None,
                 debug: str = "") -> None:
        super().__init__(description, code=code, status=status, debug=debug)
        self.oauth = oauth

    def body(self) -> dict[str, Any]:
        if self.oauth is not None:
            return {"error": self.oauth, "error_description": self.description}
        return {"message": self.description}

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": self.code}


def oauth_error(error: str, description: str, debug: str = "") -> SsoError:
    """The SSO OIDC exception of an OAuth ``error`` (``InvalidRequestException`` when the
    value has no exception of its own)."""
    name, status = OAUTH_EXCEPTIONS.get(error, OAUTH_EXCEPTIONS["invalid_request"])
    return SsoError(name, description, status, oauth=error, debug=debug)


def invalid_request(description: str) -> SsoError:
    return oauth_error("invalid_request", description)


def unauthorized(description: str = "session token not found or invalid",
                 debug: str = "") -> SsoError:
    """``UnauthorizedException`` (401) of the portal: no live SSO access token."""
    return SsoError("UnauthorizedException", description, 401, debug=debug)


def forbidden(description: str = "no access", debug: str = "") -> SsoError:
    """``ForbiddenException`` (403), as IAM Identity Center answers ``GetRoleCredentials`` for
    a role the person is not assigned."""
    return SsoError("ForbiddenException", description, 403, debug=debug)


def portal_invalid(description: str) -> SsoError:
    return SsoError("InvalidRequestException", description, 400)


def too_many(description: str = "too many requests, slow down") -> SsoError:
    return SsoError("TooManyRequestsException", description, 429)
