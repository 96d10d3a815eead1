"""OpenID Connect provider: the protocol core, apart from Flask (``idp.web.oidc`` translates).

Build one :class:`OidcProvider` per process (:func:`build_provider`); its methods take plain
:class:`OAuthRequest` objects and return plain results.
"""

from __future__ import annotations

from idp.oidc.claims import Grantee, session_sid
from idp.oidc.core import Core, JsonResult, OAuthRequest
from idp.oidc.errors import OAuthError
from idp.oidc.provider import OidcProvider, build_provider

__all__ = ["Core", "Grantee", "JsonResult", "OAuthError", "OAuthRequest", "OidcProvider",
           "build_provider", "session_sid"]
