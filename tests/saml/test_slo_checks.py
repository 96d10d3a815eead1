"""Single logout gets the checks an AuthnRequest gets (SAML Profiles §4.4.4; SAML Bindings
§3.4.5.2, §3.5.5.2), over HTTP-Redirect and HTTP-POST: a known SP, a signature where the SP
has a signing key, IssueInstant within the window, Destination this IdP's logout endpoint
(required when signed), each ID once, and a LogoutResponse only as the answer to the
LogoutRequest this IdP sent and is still waiting for.  A refused LogoutRequest of a known SP is
answered at its logout endpoint with Requester/RequestDenied and signs nobody out; anything
else refused is a 4xx page.  Every refusal is audited."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.saml.conftest import Federation, start_federation
from tests.saml.craft import (
    STATUS,
    logout_request,
    logout_response,
    new_id,
    post_fields,
    read_redirect,
    redirect_query,
    status_codes,
)
from tests.saml.spapps import make_cert

BINDINGS = [pytest.param("redirect", id="redirect"), pytest.param("post", id="post")]
Y2001 = 978_307_200.0  # 2001-01-01T00:00:00Z
OTHER_KEY, OTHER_CERT = make_cert("mallory")
EVIL_SP = "https://evil.example/sp"
FOREIGN_SLO = "https://other-idp.example/saml/slo"


@pytest.fixture(scope="module")
def fed(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    yield from start_federation(demo_keys_dir, tmp_path_factory.mktemp("slo"))


def slo_url(fed: Federation) -> str:
    return fed.idp.url + "/saml/slo"


def idp_cert(fed: Federation) -> str:
    return fed.idp.components.keys.active("RS256").cert_pem


def send(fed: Federation, binding: str, param: str, xml: bytes, *, key: str | None,
         cert: str = "", relay: str | None = None,
         session: requests.Session | None = None) -> requests.Response:
    """Deliver a message to /saml/slo by ``binding``, signed with ``key`` unless it is None."""
    http: Any = session or requests
    if binding == "redirect":
        return http.get(slo_url(fed) + "?" + redirect_query(param, xml, key, relay),
                        timeout=10, allow_redirects=False)
    return http.post(slo_url(fed), data=post_fields(param, xml, key, cert, relay),
                     timeout=10, allow_redirects=False)


def last_refusal(fed: Federation) -> dict[str, Any]:
    refused = [r for r in fed.idp.audit.records if r["eventName"] == "SamlRequestRefused"]
    assert refused, "the refusal is audited"
    return refused[-1]


def assert_request_denied(fed: Federation, resp: requests.Response, request_id: str) -> None:
    """A signed LogoutResponse at the SP's logout endpoint (from its metadata) saying
    Requester/RequestDenied in answer to ``request_id``."""
    assert resp.status_code in (302, 303), (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(fed.onelogin.base + "/sls?")
    root, _ = read_redirect(location, idp_cert(fed))
    assert root.tag.endswith("}LogoutResponse") and root.get("InResponseTo") == request_id
    assert status_codes(root) == [STATUS + "Requester", STATUS + "RequestDenied"]


# -- LogoutRequest --------------------------------------------------------------------------

@dataclass(frozen=True)
class BadRequest:
    code: str
    issued: Callable[[], float] = time.time
    destination: Callable[[Federation], str | None] = slo_url
    attrs: str = ""


REQUEST_REFUSALS = [
    pytest.param(BadRequest("request_expired", issued=lambda: Y2001),
                 id="stale IssueInstant (2001)"),
    pytest.param(BadRequest("request_expired", issued=lambda: time.time() + 3600),
                 id="IssueInstant an hour in the future"),
    pytest.param(BadRequest("destination_mismatch", destination=lambda f: FOREIGN_SLO),
                 id="Destination of another IdP"),
    pytest.param(BadRequest("destination_mismatch", destination=lambda f: None),
                 id="signed without Destination"),
    pytest.param(BadRequest("request_expired", attrs=' NotOnOrAfter="2001-01-01T00:05:00Z"'),
                 id="NotOnOrAfter passed"),
]


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", REQUEST_REFUSALS)
def test_logout_request_failing_a_check_gets_request_denied(fed: Federation, binding: str,
                                                             case: BadRequest) -> None:
    ident = new_id()
    xml = logout_request(fed.onelogin.entity_id, case.destination(fed), ident=ident,
                         issued=case.issued(), attrs=case.attrs)
    resp = send(fed, binding, "SAMLRequest", xml, key=fed.onelogin.key, cert=fed.onelogin.cert)
    assert_request_denied(fed, resp, ident)
    record = last_refusal(fed)
    assert record["errorCode"] == case.code
    assert record["additionalEventData"]["serviceProvider"] == fed.onelogin.entity_id


@pytest.mark.parametrize("binding", BINDINGS)
def test_replayed_logout_request_is_refused_the_second_time(fed: Federation,
                                                            binding: str) -> None:
    ident = new_id()
    xml = logout_request(fed.onelogin.entity_id, slo_url(fed), ident=ident)
    first = send(fed, binding, "SAMLRequest", xml, key=fed.onelogin.key,
                 cert=fed.onelogin.cert)
    assert first.status_code in (302, 303), first.text[:300]
    root, _ = read_redirect(first.headers["Location"], idp_cert(fed))
    assert status_codes(root) == [STATUS + "Success"]
    again = send(fed, binding, "SAMLRequest", xml, key=fed.onelogin.key,
                 cert=fed.onelogin.cert)
    assert_request_denied(fed, again, ident)
    assert last_refusal(fed)["errorCode"] == "request_replayed"


@pytest.mark.parametrize("binding", BINDINGS)
def test_refused_logout_request_leaves_the_person_signed_in(fed: Federation,
                                                            binding: str) -> None:
    """A stale LogoutRequest naming alice, delivered through her own browser, signs her out
    of nothing (a replayed logout would otherwise be a forced sign-out)."""
    b = fed.browser()
    name_id = b.go(fed.onelogin.base + "/login").json()["name_id"]
    ident = new_id()
    xml = logout_request(fed.onelogin.entity_id, slo_url(fed), ident=ident, issued=Y2001,
                         name_id=name_id)
    resp = send(fed, binding, "SAMLRequest", xml, key=fed.onelogin.key,
                cert=fed.onelogin.cert, session=b.s)
    assert_request_denied(fed, resp, ident)
    cookie = fed.idp.components.config.session.cookie_name
    assert f"{cookie}=;" not in resp.headers.get("Set-Cookie", ""), "cookie not cleared"
    account = b.s.get(fed.idp.url + "/account", timeout=5, allow_redirects=False)
    assert account.status_code == 200, "still signed in at the IdP"


@pytest.mark.parametrize("binding", BINDINGS)
def test_logout_request_of_unknown_issuer_is_a_400_page(fed: Federation, binding: str) -> None:
    xml = logout_request(EVIL_SP, slo_url(fed))
    resp = send(fed, binding, "SAMLRequest", xml, key=OTHER_KEY, cert=OTHER_CERT)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert last_refusal(fed)["errorCode"] == "unknown_sp"


@pytest.mark.parametrize("binding", BINDINGS)
def test_unsigned_logout_request_of_sp_with_signing_key_is_refused(fed: Federation,
                                                                   binding: str) -> None:
    xml = logout_request(fed.onelogin.entity_id, slo_url(fed))
    resp = send(fed, binding, "SAMLRequest", xml, key=None)
    assert resp.status_code == 403 and "Location" not in resp.headers
    assert last_refusal(fed)["errorCode"] == "signature_required"


@pytest.mark.parametrize("binding", BINDINGS)
def test_refused_logout_request_of_sp_without_logout_endpoint_is_a_400_page(
        fed: Federation, binding: str) -> None:
    """No trusted endpoint to answer at (the pysaml2 SP publishes none): a page, no redirect."""
    sp = fed.pysaml2
    xml = logout_request(sp.entity_id, slo_url(fed), issued=Y2001)
    resp = send(fed, binding, "SAMLRequest", xml, key=sp.key, cert=sp.cert)
    assert resp.status_code == 400 and "Location" not in resp.headers
    record = last_refusal(fed)
    assert record["errorCode"] == "request_expired"
    assert record["additionalEventData"]["serviceProvider"] == sp.entity_id


# -- LogoutResponse -------------------------------------------------------------------------

def start_chain(fed: Federation) -> tuple[str, str]:
    """alice signs in to the onelogin SP, then out at the IdP: the IdP's LogoutRequest to
    the SP (its ID) and the chain's RelayState; the SP's answer is the test's to write."""
    b = fed.browser()
    assert b.go(fed.onelogin.base + "/login").status_code == 200
    page = b.s.get(fed.idp.url + "/account", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    resp = b.s.post(slo_url(fed), data={"csrf_token": token.group(1)}, timeout=5,
                    allow_redirects=False)
    assert resp.headers["Location"].startswith(fed.onelogin.base + "/sls?")
    root, params = read_redirect(resp.headers["Location"], idp_cert(fed))
    return root.get("ID") or "", params["RelayState"]


def answer(fed: Federation, binding: str, in_response_to: str, relay: str,
           **kw: Any) -> requests.Response:
    """The onelogin SP's signed LogoutResponse (``kw``: what to change in it)."""
    sp = kw.pop("sp", fed.onelogin)
    key, cert = kw.pop("key", (sp.key, sp.cert))
    destination = kw.pop("destination", slo_url(fed))
    xml = logout_response(kw.pop("issuer", sp.entity_id), destination, in_response_to, **kw)
    return send(fed, binding, "SAMLResponse", xml, key=key, cert=cert, relay=relay)


def assert_signed_out(resp: requests.Response) -> None:
    assert resp.status_code == 200 and "Signed out" in resp.text, resp.text[:300]


@dataclass(frozen=True)
class BadResponse:
    code: str
    changes: Callable[[Federation], dict[str, Any]] = field(default=lambda f: {})
    in_response_to: str | None = None  # None: the ID of the IdP's LogoutRequest


RESPONSE_REFUSALS = [
    pytest.param(BadResponse("unexpected_logout_response", in_response_to="_not_sent_by_us"),
                 id="InResponseTo of no LogoutRequest this IdP sent"),
    pytest.param(BadResponse("request_expired", lambda f: {"issued": Y2001}),
                 id="stale IssueInstant (2001)"),
    pytest.param(BadResponse("request_expired", lambda f: {"issued": time.time() + 3600}),
                 id="IssueInstant an hour in the future"),
    pytest.param(BadResponse("destination_mismatch", lambda f: {"destination": FOREIGN_SLO}),
                 id="Destination of another IdP"),
    pytest.param(BadResponse("destination_mismatch", lambda f: {"destination": None}),
                 id="signed without Destination"),
    pytest.param(BadResponse("unknown_sp", lambda f: {"issuer": EVIL_SP,
                                                      "key": (OTHER_KEY, OTHER_CERT)}),
                 id="issuer not a known SP"),
    pytest.param(BadResponse("unexpected_logout_response", lambda f: {"sp": f.onelogin2}),
                 id="another known SP answers for the one asked"),
    pytest.param(BadResponse("invalid_signature", lambda f: {"key": (OTHER_KEY, OTHER_CERT)}),
                 id="signed by a key not in the SP's metadata"),
]


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", RESPONSE_REFUSALS)
def test_logout_response_failing_a_check_is_refused_and_the_chain_waits(
        fed: Federation, binding: str, case: BadResponse) -> None:
    request_id, relay = start_chain(fed)
    bad = answer(fed, binding, case.in_response_to or request_id, relay, **case.changes(fed))
    assert bad.status_code in (400, 403) and "Location" not in bad.headers, bad.text[:300]
    assert last_refusal(fed)["errorCode"] == case.code
    assert_signed_out(answer(fed, binding, request_id, relay))  # the real answer still counts


@pytest.mark.parametrize("binding", BINDINGS)
def test_replayed_logout_response_is_refused(fed: Federation, binding: str) -> None:
    """The very same message again: its chain is over and its ID was used."""
    request_id, relay = start_chain(fed)
    ident = new_id()
    assert_signed_out(answer(fed, binding, request_id, relay, ident=ident))
    again = answer(fed, binding, request_id, relay, ident=ident)
    assert again.status_code == 400, again.text[:300]
    assert last_refusal(fed)["errorCode"] in ("unexpected_logout_response", "request_replayed")


@pytest.mark.parametrize("binding", BINDINGS)
def test_logout_request_is_answered_once(fed: Federation, binding: str) -> None:
    """A second LogoutResponse (a new ID) to a LogoutRequest already answered is refused:
    the chain's state is taken by the first."""
    request_id, relay = start_chain(fed)
    assert_signed_out(answer(fed, binding, request_id, relay))
    again = answer(fed, binding, request_id, relay)
    assert again.status_code == 400, again.text[:300]
    assert last_refusal(fed)["errorCode"] in ("unexpected_logout_response", "request_replayed")
