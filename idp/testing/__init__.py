"""The test kit: this IdP as a realistic, scriptable identity provider for other people's
integration tests (SAML service providers, OIDC relying parties, AWS-role-federated apps).

``IdpServer`` runs the real application over real HTTP; its headless helpers mint what the IdP
would issue (``login``, ``saml_response``, ``id_token``, ``access_token``, ``sts_credentials``)
through the IdP's own signing code and role mapping.  See docs/testing.md.
"""

from idp.testing.config import KitConfig, SamlSp, User
from idp.testing.errors import KitError
from idp.testing.saml_mint import SamlPost
from idp.testing.server import IdpServer
from idp.testing.sts_mint import Credentials

__all__ = ["Credentials", "IdpServer", "KitConfig", "KitError", "SamlPost", "SamlSp", "User"]
