"""python3-saml (OneLogin's independent SAML toolkit) as the service provider under test:
a response is handed to ``OneLogin_Saml2_Response.is_valid`` in strict mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from idp.testing import IdpServer, SamlSp
from tests.saml.spapps import make_cert

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SP_PORT = 9871
SP_ENTITY = f"http://127.0.0.1:{SP_PORT}/metadata"
SP_ACS = f"http://127.0.0.1:{SP_PORT}/acs"
SP_KEY, SP_CERT = make_cert("kit-sp")


def kit_sp(**extra: Any) -> SamlSp:
    """The SP as the kit IdP knows it (entity ID, ACS, certificates)."""
    return SamlSp(entity_id=SP_ENTITY, acs_url=SP_ACS, certificate=SP_CERT, **extra)


def _body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


@dataclass
class Verdict:
    valid: bool
    error: str | None
    name_id: str | None
    in_response_to: str | None = None


def settings(idp: IdpServer) -> OneLogin_Saml2_Settings:
    """Strict SP settings: signed assertions required, signed messages not (so that each
    preset is refused for its own flaw, not for a missing Response signature)."""
    return OneLogin_Saml2_Settings({
        "strict": True, "debug": False,
        "sp": {"entityId": SP_ENTITY,
               "assertionConsumerService": {"url": SP_ACS, "binding": POST},
               "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
               "x509cert": _body(SP_CERT), "privateKey": SP_KEY},
        "idp": {"entityId": idp.saml_entity_id,
                "singleSignOnService": {"url": idp.saml_sso_url, "binding": POST},
                "x509cert": _body(idp.certificate())},
        "security": {"wantAssertionsSigned": True, "wantMessagesSigned": False,
                     "rejectDeprecatedAlgorithm": True},
    })


def verify(idp: IdpServer, saml_response: str, request_id: str | None = None) -> Verdict:
    """What python3-saml makes of a SAMLResponse posted to the SP's ACS."""
    request_data = {"https": "off", "http_host": f"127.0.0.1:{SP_PORT}",
                    "script_name": "/acs", "get_data": {},
                    "post_data": {"SAMLResponse": saml_response}}
    try:
        resp = OneLogin_Saml2_Response(settings(idp), saml_response)
        ok = bool(resp.is_valid(request_data, request_id, raise_exceptions=False))
        error = resp.get_error()
        name_id = resp.get_nameid() if ok else None
        in_response_to = resp.get_in_response_to()
    except Exception as exc:  # python3-saml raises on some malformed documents
        return Verdict(False, f"{type(exc).__name__}: {exc}", None)
    return Verdict(ok, error, name_id, in_response_to)
