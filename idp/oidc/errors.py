"""OAuth 2.0 errors (RFC 6749 §5.2, §4.1.2.1; RFC 6750 §3.1; RFC 8628 §3.5; OIDC Core §3.1.2.6).

``code`` is the ``error`` value the specs define; ``description`` is client-safe; ``debug`` is
logged, never sent.  ``redirect`` says whether the error may go back to the client's redirect
URI: an unknown ``client_id`` or an unregistered ``redirect_uri`` is shown to the user, never
redirected to (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

from idp.errors import IdpError

_STATUS = {"invalid_client": 401, "invalid_token": 401, "insufficient_scope": 403,
           "server_error": 500, "temporarily_unavailable": 503}


class OAuthError(IdpError):
    """An OAuth ``error`` response: ``OAuthError("invalid_grant", "code was already used")``."""

    def __init__(self, code: str, description: str | None = None, *, status: int | None = None,
                 redirect: bool = True, debug: str = "") -> None:
        super().__init__(description or code.replace("_", " "), code=code,
                         status=status or _STATUS.get(code, 400), debug=debug)
        self.redirect = redirect

    def body(self) -> dict[str, str]:
        """The JSON error body (RFC 6749 §5.2)."""
        return {"error": self.code, "error_description": self.description}


def invalid_request(description: str, *, redirect: bool = True) -> OAuthError:
    return OAuthError("invalid_request", description, redirect=redirect)
