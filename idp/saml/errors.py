"""SAML errors: a status URN for the SP (SAML Core §3.2.2.2) or a 4xx page when no SP can be
answered safely (unknown SP, ACS not in metadata, unverifiable or malformed message)."""

from __future__ import annotations

from idp.errors import IdpError

STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
SUCCESS = STATUS + "Success"
REQUESTER = STATUS + "Requester"
RESPONDER = STATUS + "Responder"
REQUEST_DENIED = STATUS + "RequestDenied"
NO_PASSIVE = STATUS + "NoPassive"
NO_AUTHN_CONTEXT = STATUS + "NoAuthnContext"
INVALID_NAMEID_POLICY = STATUS + "InvalidNameIDPolicy"
UNSUPPORTED_BINDING = STATUS + "UnsupportedBinding"
PARTIAL_LOGOUT = STATUS + "PartialLogout"


class SamlError(IdpError):
    """A SAML message that cannot be answered with a SAML response: shown as a 4xx page."""

    code = "invalid_saml_request"
    status = 400
    description = "the SAML message was refused"


class SamlSignatureError(SamlError):
    """A signature is missing where required, or does not verify (SAML Core §5)."""

    code = "invalid_signature"
    status = 403
    description = "the SAML message signature is missing or invalid"


class SamlStatusError(IdpError):
    """Refuse a request the SP is answered about: a ``<samlp:Status>`` (SAML Core §3.2.2.2)."""

    code = "saml_status"
    status = 400

    def __init__(self, sub_status: str, description: str, *, top: str = REQUESTER,
                 debug: str = "") -> None:
        self.top_status = top
        self.sub_status = sub_status
        super().__init__(description, code=sub_status.rsplit(":", 1)[-1], debug=debug)
