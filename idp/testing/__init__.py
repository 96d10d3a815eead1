"""The test kit: this IdP as a realistic, scriptable identity provider for other people's
integration tests (SAML service providers, OIDC relying parties, AWS-role-federated apps).

``IdpServer`` runs the real application over real HTTP; its headless helpers mint what the IdP
would issue (``login``, ``saml_response``, ``id_token``, ``access_token``, ``sts_credentials``)
through the IdP's own signing code and role mapping.  See docs/testing.md.

Names are imported on first use, so that the mock commands of ``idp`` load without the kit's
test-only dependencies (``requests``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idp.testing.config import KitConfig, SamlSp, User
    from idp.testing.errors import KitError
    from idp.testing.saml_mint import SamlPost
    from idp.testing.server import IdpServer
    from idp.testing.sts_mint import Credentials

_WHERE = {"KitConfig": "config", "SamlSp": "config", "User": "config", "KitError": "errors",
          "SamlPost": "saml_mint", "IdpServer": "server", "Credentials": "sts_mint"}
__all__ = ["Credentials", "IdpServer", "KitConfig", "KitError", "SamlPost", "SamlSp", "User"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"idp.testing.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'idp.testing' has no attribute {name!r}")
