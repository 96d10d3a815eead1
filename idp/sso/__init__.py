"""IAM Identity Center–compatible sign-in: the SSO OIDC API (``sso-oidc``, 2019-06-10) and the
SSO portal API (``sso``, 2019-06-10) that every AWS SDK's SSO token and credential providers
call, built on this IdP's OIDC provider (:mod:`idp.oidc`) and STS (:mod:`idp.sts`).

- :mod:`idp.sso.registration`: clients registered on the fly (``RegisterClient``), in the store
- :mod:`idp.sso.oidc_api`: ``RegisterClient``, ``StartDeviceAuthorization``, ``CreateToken``
  as JSON translations of ``/oauth2/device_authorization`` and ``/oauth2/token``
- :mod:`idp.sso.portal`: ``ListAccounts``, ``ListAccountRoles``, ``GetRoleCredentials``,
  ``Logout`` for a bearer token with the ``sso:account:access`` scope
- :mod:`idp.sso.credentials`: role credentials through the STS's web-identity checks
"""

from idp.sso.errors import SsoError
from idp.sso.oidc_api import SsoOidc
from idp.sso.portal import Portal

__all__ = ["Portal", "SsoError", "SsoOidc"]
