"""idp: a federated identity provider with SAML 2.0, OpenID Connect and an AWS-style STS."""

__version__ = "0.1.0"
