"""The signature covers exactly what is processed (SAML Bindings §3.4.4.1): parameter names
are decoded before they are compared, and a protocol parameter (SAMLRequest, SAMLResponse,
RelayState, SigAlg, Signature) given twice -- plainly, percent-encoded, or in another case --
is refused with a 400 page and an audited refusal, at /saml/sso and /saml/slo, over
HTTP-Redirect and HTTP-POST.  Genuine signed messages still pass, however their names are
encoded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import requests

from tests.saml.conftest import Federation, start_federation
from tests.saml.craft import (
    STATUS,
    authn_request,
    deflate_b64,
    get_exact,
    logout_request,
    post_fields,
    read_redirect,
    redirect_query,
    status_codes,
)

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def fed(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    yield from start_federation(demo_keys_dir, tmp_path_factory.mktemp("redirect"))


@dataclass(frozen=True)
class Door:
    """An endpoint and the kind of message an SP sends it."""

    path: str
    message: Callable[[Federation], bytes]  # a fresh message (new ID) of the SP onelogin

    def signed_query(self, f: Federation) -> str:
        return redirect_query("SAMLRequest", self.message(f), f.onelogin.key, relay="good")

    def forged(self, f: Federation) -> str:
        """Another message of the same kind, unsigned, deflated and base64-encoded."""
        return deflate_b64(self.message(f))

    def signed_fields(self, f: Federation) -> list[tuple[str, str]]:
        return post_fields("SAMLRequest", self.message(f), f.onelogin.key, f.onelogin.cert,
                           relay="good")


SSO = Door("/saml/sso", lambda f: authn_request(f.onelogin.entity_id, f.idp.url + "/saml/sso"))
SLO = Door("/saml/slo", lambda f: logout_request(f.onelogin.entity_id, f.idp.url + "/saml/slo",
                                                 name_id="victim"))
DOORS = [pytest.param(SSO, id="sso"), pytest.param(SLO, id="slo")]


@dataclass(frozen=True)
class Tamper:
    """How the attacker rewrites a genuinely signed query (``forged``: URL-encoded message)."""

    rewrite: Callable[[str, str], str]
    code: str


REDIRECT_ATTACKS = [
    pytest.param(Tamper(lambda q, forged: f"SAML%52equest={forged}&{q}", "repeated_parameter"),
                 id="SAML%52equest: an unsigned request before the signed one"),
    pytest.param(Tamper(lambda q, _: f"Relay%53tate=evil&{q}", "repeated_parameter"),
                 id="Relay%53tate: another RelayState before the signed one"),
    pytest.param(Tamper(lambda q, _: f"Sig%41lg={quote_plus(RSA_SHA1)}&{q}",
                        "repeated_parameter"), id="Sig%41lg: a second SigAlg"),
    pytest.param(Tamper(lambda q, _: f"{q}&Signatur%65=AAAA", "repeated_parameter"),
                 id="Signatur%65: a second Signature"),
    pytest.param(Tamper(lambda q, forged: f"{q}&SAMLRequest={forged}", "repeated_parameter"),
                 id="plain duplicate SAMLRequest after the signed one"),
    pytest.param(Tamper(lambda q, _: f"RelayState=evil&{q}", "repeated_parameter"),
                 id="plain duplicate RelayState"),
    pytest.param(Tamper(lambda q, _: f"SigAlg={quote_plus(RSA_SHA1)}&{q}",
                        "repeated_parameter"), id="plain duplicate SigAlg"),
    pytest.param(Tamper(lambda q, _: f"{q}&Signature=AAAA", "repeated_parameter"),
                 id="plain duplicate Signature"),
    pytest.param(Tamper(lambda q, forged: f"samlrequest={forged}&{q}", "ambiguous_parameter"),
                 id="lower-case samlrequest beside the signed one"),
    pytest.param(Tamper(lambda q, forged: f"%73AMLRequest={forged}&{q}",
                        "ambiguous_parameter"),
                 id="percent-encoded other case %73AMLRequest beside the signed one"),
    pytest.param(Tamper(lambda q, _: f"{q}&RELAYSTATE=evil", "ambiguous_parameter"),
                 id="upper-case RELAYSTATE beside the signed RelayState"),
    pytest.param(Tamper(lambda q, _: f"{q}&%73ig%61lg={quote_plus(RSA_SHA1)}",
                        "ambiguous_parameter"), id="percent-encoded other case %73ig%61lg"),
]


def _refusals(fed: Federation, since: int) -> list[tuple[str, str | None]]:
    return [(r["eventName"], r.get("errorCode")) for r in fed.idp.audit.records[since:]]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("attack", REDIRECT_ATTACKS)
def test_redirect_with_repeated_protocol_parameter_is_refused(fed: Federation, door: Door,
                                                              attack: Tamper) -> None:
    since = len(fed.idp.audit.records)
    query = attack.rewrite(door.signed_query(fed), quote_plus(door.forged(fed)))
    resp = get_exact(f"{fed.idp.url}{door.path}?{query}")
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert "SAMLResponse" not in resp.text and "Location" not in resp.headers
    assert _refusals(fed, since) == [("SamlRequestRefused", attack.code)]


POST_ATTACKS = [
    pytest.param(lambda signed, forged: [*signed, ("SAMLRequest", forged)],
                 id="SAMLRequest field twice, the signed one first"),
    pytest.param(lambda signed, forged: [("SAMLRequest", forged), *signed],
                 id="SAMLRequest field twice, the unsigned one first"),
    pytest.param(lambda signed, forged: [("SAML%52equest", forged), *signed],
                 id="SAML%52equest field before the signed SAMLRequest"),
    pytest.param(lambda signed, _: [("RelayState", "evil"), *signed],
                 id="RelayState field twice"),
    pytest.param(lambda signed, _: [*signed, ("Relay%53tate", "evil")],
                 id="Relay%53tate field after the signed RelayState"),
]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("attack", POST_ATTACKS)
def test_post_with_repeated_protocol_field_is_refused(
        fed: Federation, door: Door,
        attack: Callable[[list[tuple[str, str]], str], list[tuple[str, str]]]) -> None:
    """SAML Bindings §3.5.4: one message, one RelayState per form."""
    since = len(fed.idp.audit.records)
    forged = post_fields("SAMLRequest", door.message(fed), None)[0][1]
    fields = attack(door.signed_fields(fed), forged)
    body = "&".join(f"{name}={quote_plus(value)}" for name, value in fields)
    resp = requests.post(fed.idp.url + door.path, data=body, headers=FORM, timeout=10,
                         allow_redirects=False)
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert _refusals(fed, since) == [("SamlRequestRefused", "repeated_parameter")]


def test_logout_message_carrying_both_request_and_response_is_refused(fed: Federation) -> None:
    """A query is one message: SAMLRequest and SAMLResponse together are not read as one."""
    since = len(fed.idp.audit.records)
    query = SLO.signed_query(fed) + "&SAMLResponse=" + quote_plus(SLO.forged(fed))
    resp = get_exact(f"{fed.idp.url}/saml/slo?{query}")
    assert resp.status_code == 400
    assert _refusals(fed, since) == [("SamlRequestRefused", "invalid_saml_request")]


def _encode_names(query: str) -> str:
    """Every parameter name written with a percent-encoded letter (same names, RFC 3986
    §2.1): ``SAML%52equest``, ``Relay%53tate``, ``Sig%41lg``, ``Signatur%65``."""
    for name, written in (("SAMLRequest=", "SAML%52equest="), ("RelayState=", "Relay%53tate="),
                          ("SigAlg=", "Sig%41lg="), ("Signature=", "Signatur%65=")):
        query = query.replace(name, written, 1)
    return query


@pytest.mark.parametrize("encode", [pytest.param(False, id="names as usual"),
                                    pytest.param(True, id="every name percent-encoded")])
def test_signed_authn_request_is_still_accepted(fed: Federation, encode: bool) -> None:
    query = SSO.signed_query(fed)
    resp = get_exact(f"{fed.idp.url}/saml/sso?{_encode_names(query) if encode else query}")
    assert resp.status_code in (302, 303), resp.text[:300]
    assert "/login?" in resp.headers["Location"]


@pytest.mark.parametrize("encode", [pytest.param(False, id="names as usual"),
                                    pytest.param(True, id="every name percent-encoded")])
def test_signed_logout_request_is_still_accepted(fed: Federation, encode: bool) -> None:
    query = SLO.signed_query(fed)
    resp = get_exact(f"{fed.idp.url}/saml/slo?{_encode_names(query) if encode else query}")
    assert resp.status_code in (302, 303), resp.text[:300]
    location = resp.headers["Location"]
    assert location.startswith(fed.onelogin.base + "/sls?")
    root, params = read_redirect(location, fed.idp.components.keys.active("RS256").cert_pem)
    assert status_codes(root) == [STATUS + "Success"]
    assert params["RelayState"] == "good"


def test_idp_initiated_with_repeated_relay_state_is_refused(fed: Federation) -> None:
    since = len(fed.idp.audit.records)
    resp = get_exact(f"{fed.idp.url}/saml/idp-initiated?sp=urn:amazon:webservices"
                     "&RelayState=a&Relay%53tate=b")
    assert resp.status_code == 400
    assert _refusals(fed, since) == [("SamlRequestRefused", "repeated_parameter")]
