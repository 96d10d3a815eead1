"""Every SAML failure preset is refused by python3-saml (an independent SP in strict mode) and,
where an AWS-style consumer can tell, by this IdP's own STS; the genuine response, minted the
same way, is accepted by both (so each refusal is the preset's doing)."""

from __future__ import annotations

import pytest
import requests

from idp.testing import IdpServer
from idp.testing.saml_presets import PRESETS
from tests.testing import onelogin

AWS_SP = "urn:amazon:webservices"
ADMIN = "arn:aws:iam::111122223333:role/Admin"
PROVIDER = "arn:aws:iam::111122223333:saml-provider/demo-idp"
REQUEST_ID = "_kit-request-1"
STS_CODES = {"expired": ("ExpiredTokenException", 400),
             "status_authn_failed": ("IDPRejectedClaim", 403),
             "status_responder": ("IDPRejectedClaim", 403)}
"""AWS's codes for what the STS refuses; every other preset is an InvalidIdentityToken."""
STS_PRESETS = [name for name, p in PRESETS.items() if p.sts]
SP_ONLY = [name for name, p in PRESETS.items() if not p.sts]
# python3-saml is not fooled by these two in its own way (see the tests below)
REFUSED = [n for n in PRESETS if n not in ("missing_in_response_to", "comment_in_name_id")]


def _assume(idp: IdpServer, saml_response: str) -> requests.Response:
    return requests.post(idp.sts_url, timeout=10, data={
        "Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": ADMIN,
        "PrincipalArn": PROVIDER, "SAMLAssertion": saml_response})


def test_genuine_response_is_accepted_by_python3_saml(idp_server: IdpServer) -> None:
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice", in_response_to=REQUEST_ID)
    verdict = onelogin.verify(idp_server, post.saml_response, REQUEST_ID)
    assert verdict.valid, verdict.error


def test_genuine_response_is_accepted_by_the_sts(idp_server: IdpServer) -> None:
    resp = _assume(idp_server, idp_server.saml_response(AWS_SP, "alice").saml_response)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("preset", REFUSED, ids=[f"python3-saml-refuses-{n}" for n in REFUSED])
def test_python3_saml_refuses_preset(idp_server: IdpServer, preset: str) -> None:
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice", in_response_to=REQUEST_ID,
                                    preset=preset)
    verdict = onelogin.verify(idp_server, post.saml_response, REQUEST_ID)
    assert not verdict.valid, f"python3-saml accepted {preset} as {verdict.name_id}"


def test_python3_saml_takes_missing_in_response_to_as_unsolicited_so_the_app_must_check(
        idp_server: IdpServer) -> None:
    """python3-saml validates a Response without InResponseTo even when given the request ID
    (it treats it as unsolicited): the SP application must refuse it itself when it sent a
    request, which the verdict makes visible."""
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice", in_response_to=REQUEST_ID,
                                    preset="missing_in_response_to")
    verdict = onelogin.verify(idp_server, post.saml_response, REQUEST_ID)
    assert verdict.valid and verdict.in_response_to is None


def test_python3_saml_reads_the_whole_name_id_around_a_comment(idp_server: IdpServer) -> None:
    """python3-saml (since its CVE-2017-11427 fix) reads the NameID's full text, so the
    comment does not truncate the identity: it takes the genuine NameID, not a prefix."""
    genuine = onelogin.verify(idp_server, idp_server.saml_response(
        onelogin.SP_ENTITY, "alice").saml_response)
    post = idp_server.saml_response(onelogin.SP_ENTITY, "alice", in_response_to=REQUEST_ID,
                                    preset="comment_in_name_id")
    assert b"<!---->" in post.xml
    verdict = onelogin.verify(idp_server, post.saml_response, REQUEST_ID)
    assert not verdict.valid or verdict.name_id == genuine.name_id


@pytest.mark.parametrize("preset", STS_PRESETS, ids=[f"sts-refuses-{n}" for n in STS_PRESETS])
def test_our_sts_refuses_preset(idp_server: IdpServer, preset: str) -> None:
    resp = _assume(idp_server, idp_server.saml_response(AWS_SP, "alice", preset=preset)
                   .saml_response)
    code = STS_CODES.get(preset, ("InvalidIdentityToken", 400))
    assert (resp.status_code, f"<Code>{code[0]}</Code>" in resp.text) == (code[1], True), \
        resp.text
    assert b"AccessKeyId" not in resp.content


@pytest.mark.parametrize("preset", SP_ONLY, ids=[f"sts-accepts-sp-only-{n}" for n in SP_ONLY])
def test_sp_only_presets_are_valid_for_an_aws_style_consumer(idp_server: IdpServer,
                                                             preset: str) -> None:
    """AWS (and so our STS) takes unsolicited responses and a signature on the Response
    alone: these presets test SP settings, and are marked so (``sts=False``)."""
    resp = _assume(idp_server, idp_server.saml_response(AWS_SP, "alice", preset=preset)
                   .saml_response)
    assert resp.status_code == 200, resp.text


def test_every_preset_documents_its_attack() -> None:
    for preset in PRESETS.values():
        assert preset.attack and preset.make.__doc__, preset.name


def test_unknown_preset_is_refused(idp_server: IdpServer) -> None:
    with pytest.raises(Exception, match="unknown SAML preset `xsw9`"):
        idp_server.saml_response(onelogin.SP_ENTITY, "alice", preset="xsw9")
