"""Write, sign and (when the SP asks) encrypt the assertion for a signed-in person
(SAML Profiles §4.1.4.2; SAML Core §2.7.2 AuthnStatement, §6.1 EncryptedAssertion)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree

from idp.audit import RequestInfo
from idp.saml import attributes as attrs
from idp.saml import build, textsign
from idp.saml.crypto import LxmlCrypto, cert_b64
from idp.saml.metadata import ServiceProvider
from idp.saml.outcomes import PostForm
from idp.saml.xml import SAML, encode_post
from idp.store import new_id

if TYPE_CHECKING:
    from idp.login.sessions import IdpSession
    from idp.saml.core import SamlIdp


def session_index(sess: IdpSession) -> str:
    """An opaque per-session index (never the session ID itself)."""
    index = sess.extra.get("saml_session_index")
    if not isinstance(index, str):
        index = sess.extra["saml_session_index"] = "_" + new_id()
    return index


def assertion_data(idp: SamlIdp, sp: ServiceProvider, pending: dict[str, Any], fmt: str,
                   sess: IdpSession) -> tuple[build.AssertionData, build.NameId, list[Any]]:
    """What the assertion for ``sess`` says to ``sp`` (SAML Profiles §4.1.4.2), with the
    role grants the mapping gives (the AWS attributes, for SPs that take them)."""
    now = idp.d.clock()
    opts = idp.options(sp)
    email = sess.attributes.get("email")
    nid = attrs.name_id(fmt, sp.entity_id, sess.subject, email, sess.username, idp.d.salt,
                        idp.entity_id)
    values = {**sess.attributes, "username": sess.username}
    attributes = attrs.mapped(opts.attribute_map, sess.username, sess.subject, sess.groups,
                              sess.attributes)
    grants: list[Any] = []
    if opts.aws_attributes and idp.d.roles_for is not None:
        grants = idp.d.roles_for(list(sess.groups), values, sp.entity_id)
        attributes += attrs.aws_attributes(grants, sess.username, email,
                                           idp.config.aws_session_duration)
    data = build.AssertionData(
        id=idp.d.id_gen(), issuer=idp.entity_id, now=now, name_id=nid, audience=sp.entity_id,
        recipient=pending["acs"], in_response_to=pending["request_id"],
        lifetime=idp.config.assertion_lifetime, skew=idp.config.clock_skew,
        authn_instant=sess.mfa_time if sess.mfa and sess.mfa_time else sess.auth_time,
        session_index=session_index(sess), session_not_on_or_after=sess.expires_at,
        authn_context=attrs.authn_context(idp.tls, sess.mfa), attributes=attributes)
    return data, nid, grants


def encrypts(idp: SamlIdp, sp: ServiceProvider) -> bool:
    """Whether assertions to ``sp`` are encrypted (its option, else its metadata)."""
    encrypt = idp.options(sp).encrypt_assertions
    if encrypt is None:
        encrypt = bool(sp.encryption_certs)
    return bool(encrypt and sp.encryption_certs)


def signed_document(idp: SamlIdp, sp: ServiceProvider, data: build.AssertionData, *,
                    response_id: str, destination: str, encrypt: bool) -> bytes:
    """The signed Response holding the signed (and maybe encrypted) assertion."""
    if not encrypt and isinstance(idp.signer, LxmlCrypto) and idp.signer.text:
        key = idp.d.keys.active("RS256")
        return textsign.signed_response(data, response_id=response_id, destination=destination,
                                        key=key, cert_b64=cert_b64(key))
    response = build.response(id=response_id, issuer=idp.entity_id, now=data.now,
                              destination=destination, in_response_to=data.in_response_to)
    response.append(build.assertion(data))
    response = idp.sign(response, response.find(SAML + "Assertion"))
    if encrypt:
        signed = response.find(SAML + "Assertion")
        wrapper = etree.Element(SAML + "EncryptedAssertion")
        signed.addprevious(wrapper)
        wrapper.append(signed)
        idp.xmlsec.encrypt_assertion(wrapper, signed, sp.encryption_certs[0])
    return bytes(etree.tostring(idp.sign(response, response)))


def issue(idp: SamlIdp, sp: ServiceProvider, pending: dict[str, Any], fmt: str,
          sess: IdpSession, info: RequestInfo) -> PostForm:
    data, nid, grants = assertion_data(idp, sp, pending, fmt, sess)
    encrypt = encrypts(idp, sp)
    document = signed_document(idp, sp, data, response_id=idp.d.id_gen(),
                               destination=pending["acs"], encrypt=encrypt)
    _remember(idp, sess, sp, nid, data.session_index)
    idp.d.auditor.emit("SamlAssertionIssued", info, user=sess.username, additional={
        "serviceProvider": sp.entity_id, "subject": sess.subject, "nameId": nid.value,
        "nameIdFormat": nid.format, "roles": [g.role_arn for g in grants],
        "sessionIndex": data.session_index, "samlId": data.id,
        "inResponseTo": pending["request_id"], "encrypted": encrypt})
    fields = {"SAMLResponse": encode_post(document)}
    if pending.get("relay") is not None:
        fields["RelayState"] = pending["relay"]
    return PostForm(pending["acs"], fields)


def _remember(idp: SamlIdp, sess: IdpSession, sp: ServiceProvider, nid: build.NameId,
              index: str) -> None:
    """Record the SP as a participant of the session (for single logout); the session is
    written only when that changes (a persistent NameID for a known SP changes nothing)."""
    entry = {"name_id": nid.value, "format": nid.format, "spnq": nid.sp_name_qualifier,
             "nq": nid.name_qualifier, "session_index": index}
    saml = sess.extra.setdefault("saml", {})
    if sp.entity_id in sess.participants and saml.get(sp.entity_id) == entry:
        return
    if sp.entity_id not in sess.participants:
        sess.participants.append(sp.entity_id)
    saml[sp.entity_id] = entry
    idp.d.sessions.save(sess)
