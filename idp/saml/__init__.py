"""SAML 2.0 identity provider: protocol core (no Flask here).

- :class:`~idp.saml.core.SamlIdp` Web Browser SSO (SAML Profiles §4.1), IdP-initiated SSO
- :class:`~idp.saml.slo.Logout` single logout (SAML Profiles §4.4)
- :mod:`~idp.saml.metadata` SP metadata in, :mod:`~idp.saml.idp_metadata` IdP metadata out
- :mod:`~idp.saml.crypto` XML signatures and encryption in process (python-xmlsec)
"""

from idp.saml.core import SamlDeps, SamlIdp
from idp.saml.errors import SamlError, SamlSignatureError, SamlStatusError
from idp.saml.messages import Binding
from idp.saml.outcomes import Done, NeedLogin, Outcome, PostForm, Redirect

__all__ = ["Binding", "Done", "NeedLogin", "Outcome", "PostForm", "Redirect", "SamlDeps",
           "SamlError", "SamlIdp", "SamlSignatureError", "SamlStatusError"]
