"""The SAML 2.0 identity provider: Web Browser SSO (SAML Profiles §4.1).

:class:`SamlIdp` takes plain messages (:class:`~idp.saml.messages.Binding`) and the signed-in
session, and returns plain outcomes (:mod:`idp.saml.outcomes`).  Requests waiting for a login
are kept in the store under ``idp:saml_req:<id>``.  Clock and ID generator are injected.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from idp.audit import Auditor, RequestInfo
from idp.config import SamlConfig, SamlSpOptions
from idp.keys import KeyRing
from idp.saml import attributes as attrs
from idp.saml import build
from idp.saml.crypto import LxmlCrypto, XmlCrypto, XmlsecCrypto
from idp.saml.errors import (
    INVALID_NAMEID_POLICY,
    NO_AUTHN_CONTEXT,
    NO_PASSIVE,
    RESPONDER,
    SamlError,
    SamlSignatureError,
    SamlStatusError,
)
from idp.saml.issue import issue
from idp.saml.messages import (
    AuthnRequest,
    Binding,
    Message,
    read_authn_request,
    verify_redirect,
)
from idp.saml.metadata import (
    AWS_CONSOLE_ENTITY_ID,
    AWS_ENTITY_ID,
    LoadedMetadata,
    ServiceProvider,
)
from idp.saml.outcomes import NeedLogin, NeedMfa, Outcome, PostForm
from idp.saml.xml import DS, decode_message, encode_post
from idp.store import Store, get_json, key, new_id, set_json

if TYPE_CHECKING:
    from idp.login.sessions import IdpSession, SessionManager

RolesFor = Callable[[list[str], dict[str, str], str], list[Any]]


class SessionSource:
    """The signed-in session of an AuthnRequest, read by :meth:`SamlIdp.sso` in the round
    trip that claims the request's ID (``SET NX`` then the reads, one Lua script on Redis):
    :meth:`keys` are read after the claim and their values given to :meth:`resolve`.  This
    base knows its session already and reads nothing."""

    def __init__(self, session: IdpSession | None = None) -> None:
        self.session = session

    def keys(self) -> Sequence[str]:
        return ()

    def resolve(self, values: Sequence[bytes | None]) -> IdpSession | None:
        """The session from the values of :meth:`keys` (read after the claim).  What it
        raises ends the request unanswered: the claim is taken back first."""
        return self.session


# the options of an SP the config does not name (made once: they are frozen)
_DEFAULT_OPTIONS = SamlSpOptions()
_AWS_OPTIONS = SamlSpOptions(idp_initiated=True, aws_attributes=True)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def saml_id() -> str:
    """An xs:ID (NCName) with 160 bits of randomness (SAML Core §1.3.4)."""
    return "_" + secrets.token_hex(20)


@dataclass
class SamlDeps:
    """What the IdP is built on (one per process)."""

    config: SamlConfig
    issuer: str
    keys: KeyRing
    store: Store
    auditor: Auditor
    sessions: SessionManager
    metadata: LoadedMetadata
    salt: bytes
    roles_for: RolesFor | None = None
    crypto: XmlCrypto | None = None
    clock: Callable[[], float] = time.time
    id_gen: Callable[[], str] = saml_id
    extra: dict[str, Any] = field(default_factory=dict)
    mfa_sps: frozenset[str] = frozenset()  # mfa.require.service_providers


class SamlIdp:
    """SSO, IdP-initiated SSO and (see :mod:`idp.saml.slo`) single logout."""

    def __init__(self, deps: SamlDeps) -> None:
        self.d = deps
        self.config = deps.config
        self.issuer = deps.issuer.rstrip("/")
        self.entity_id = self.issuer + "/saml/metadata"
        self.sso_url = self.issuer + "/saml/sso"
        self.slo_url = self.issuer + "/saml/slo"
        self.sps = deps.metadata.sps
        self.xmlsec = XmlsecCrypto()
        self.signer: XmlCrypto = deps.crypto or LxmlCrypto()
        self.tls = self.issuer.startswith("https://")

    # -- helpers ----------------------------------------------------------------------------
    def options(self, sp: ServiceProvider) -> SamlSpOptions:
        opts = self.config.service_providers.get(sp.entity_id)
        if opts is not None:
            return opts
        return _AWS_OPTIONS if sp.entity_id in (AWS_ENTITY_ID, AWS_CONSOLE_ENTITY_ID) \
            else _DEFAULT_OPTIONS

    def sp(self, entity_id: str) -> ServiceProvider:
        sp = self.sps.get(entity_id)
        if sp is None:
            raise SamlError(f"unknown service provider `{entity_id[:200]}`", code="unknown_sp")
        return sp

    def relay_state(self, params: dict[str, str] | Any) -> str | None:
        """RelayState carried verbatim, bounded (SAML Bindings §3.4.3: 80 bytes)."""
        relay = params.get("RelayState")
        if relay is not None and len(relay.encode()) > self.config.relay_state_max:
            raise SamlError("RelayState is too long", code="relay_state_too_long",
                            debug=f"{len(relay.encode())} bytes")
        return relay

    def check_signature(self, sp: ServiceProvider, root: etree._Element, msg: Binding,
                        param: str, required: bool) -> bool:
        """Verify a message's signature if it has one; refuse an unsigned one if required."""
        if msg.redirect:
            signed = verify_redirect(msg, param, sp.signing_certs)
        elif root.find(DS + "Signature") is not None:
            self.xmlsec.verify(root, list(sp.signing_certs))
            signed = True
        else:
            signed = False
        if required and not signed:
            raise SamlSignatureError("the SAML message must be signed", code="signature_required",
                                     debug=sp.entity_id)
        return signed

    def sign(self, root: etree._Element, element: etree._Element) -> etree._Element:
        return self.signer.sign(root, element, self.d.keys.active("RS256"))

    def refuse(self, info: RequestInfo, exc: Exception, sp: str | None = None) -> None:
        """Audit a refusal (every one of them)."""
        code = getattr(exc, "code", type(exc).__name__)
        self.d.auditor.emit("SamlRequestRefused", info, error_code=code,
                            error_message=getattr(exc, "description", str(exc)),
                            additional={"serviceProvider": sp} if sp else None)

    # -- SSO --------------------------------------------------------------------------------
    def sso(self, msg: Binding, session: IdpSession | SessionSource | None,
            info: RequestInfo) -> Outcome:
        """An AuthnRequest over HTTP-Redirect or HTTP-POST (SAML Bindings §3.4, §3.5).

        ``session`` is the signed-in session, or a :class:`SessionSource` that reads it in
        the round trip that claims the request's ID."""
        source = session if isinstance(session, SessionSource) else SessionSource(session)
        issuer: str | None = None
        try:
            relay = self.relay_state(msg.params)
            value = msg.params.get("SAMLRequest")
            if not value:
                raise SamlError("no SAMLRequest")
            root = decode_message(value, redirect=msg.redirect,
                                  limit=self.config.max_message_bytes)
            req = read_authn_request(root)
            issuer = req.issuer
            sp = self.sp(req.issuer)
            self.check_signature(sp, root, msg, "SAMLRequest", sp.authn_requests_signed
                                 or self.config.want_authn_requests_signed)
            sess = self._check_request(sp, req, source)
        except SamlError as exc:
            self.refuse(info, exc, issuer)
            raise
        pending: dict[str, Any] = {
            "sp": sp.entity_id, "acs": self._acs(sp, req, info), "request_id": req.id,
            "relay": relay, "force": req.force_authn, "passive": req.is_passive,
            "format": req.name_id_format, "spnq": req.sp_name_qualifier,
            "contexts": list(req.authn_contexts), "comparison": req.comparison,
            "received": int(self.d.clock())}
        return self.proceed(pending, sess, info, None)

    def _check_request(self, sp: ServiceProvider, req: AuthnRequest,
                       source: SessionSource) -> IdpSession | None:
        """:meth:`check_message`, reading the session in the claim's round trip."""
        claim, ttl = self._claim_of(sp, req, self.sso_url, destination_required=False)
        added, values = self.d.store.add_then_get_many(claim, b"1", ttl, source.keys())
        if not added:
            raise _replayed(req)
        try:
            return source.resolve(values)
        except BaseException:
            with contextlib.suppress(Exception):  # not answered: it may come again
                self.d.store.delete(claim)
            raise

    def check_message(self, sp: ServiceProvider, msg: Message, endpoint: str, *,
                      destination_required: bool) -> None:
        """What every message of an SP gets once it is authenticated: ``IssueInstant`` within
        ``request_max_age`` (± ``clock_skew``) of the injected clock; ``Destination`` the
        endpoint it came to, required when the message is signed (SAML Bindings §3.4.5.2,
        §3.5.5.2); its ID accepted once per SP (SAML Core §1.3.4), remembered for as long as
        the message could still pass the time check (SET NX in the store)."""
        claim, ttl = self._claim_of(sp, msg, endpoint, destination_required=destination_required)
        if not self.d.store.add(claim, b"1", ttl):
            raise _replayed(msg)

    def _claim_of(self, sp: ServiceProvider, msg: Message, endpoint: str, *,
                  destination_required: bool) -> tuple[str, int]:
        """:meth:`check_message`'s checks; the key and TTL of the message's ID claim."""
        kind, destination = type(msg).__name__, msg.destination
        now = self.d.clock()
        skew = self.config.clock_skew
        if not (now - self.config.request_max_age - skew <= msg.issue_instant <= now + skew):
            raise SamlError(f"the {kind} is too old or from the future",
                            code="request_expired")
        if destination is None and destination_required:
            raise SamlError(f"the signed {kind} has no Destination",
                            code="destination_mismatch")
        if destination is not None and destination != endpoint:
            raise SamlError(f"the {kind} Destination is not this IdP",
                            code="destination_mismatch", debug=destination[:300])
        digest = hashlib.sha256(f"{sp.entity_id}\x00{msg.id}".encode()).hexdigest()
        return key("saml_rid", digest), self.config.request_max_age + 2 * skew

    def _acs(self, sp: ServiceProvider, req: AuthnRequest, info: RequestInfo) -> str:
        """The ACS comes from the metadata only (SAML Profiles §4.1.4.1)."""
        if req.protocol_binding and req.protocol_binding != sp.acs[0].binding:
            raise SamlError("only the HTTP-POST binding is supported for responses",
                            code="unsupported_binding")
        if req.acs_url is not None:
            if req.acs_index is not None:
                raise SamlError("AssertionConsumerServiceURL and Index exclude each other")
            if req.acs_url not in {e.location for e in sp.acs}:
                exc = SamlError("the AssertionConsumerServiceURL is not in the SP's metadata",
                                code="acs_not_in_metadata", debug=req.acs_url[:300])
                self.refuse(info, exc, sp.entity_id)
                raise exc
            return req.acs_url
        if req.acs_index is not None:
            for e in sp.acs:
                if e.index == req.acs_index:
                    return e.location
            exc = SamlError("unknown AssertionConsumerServiceIndex", code="acs_not_in_metadata")
            self.refuse(info, exc, sp.entity_id)
            raise exc
        return sp.default_acs().location

    def idp_initiated(self, entity_id: str, relay: str | None, sess: IdpSession | None,
                      info: RequestInfo) -> Outcome:
        """Unsolicited response (SAML Profiles §4.1.5) to an SP that allows it."""
        try:
            self.relay_state({"RelayState": relay} if relay is not None else {})
            sp = self.sp(entity_id)
            if not self.options(sp).idp_initiated:
                raise SamlError("this service provider does not accept IdP-initiated sign-in",
                                code="idp_initiated_refused", status=403)
        except SamlError as exc:
            self.refuse(info, exc, entity_id)
            raise
        pending: dict[str, Any] = {
            "sp": sp.entity_id, "acs": sp.default_acs().location, "request_id": None,
            "relay": relay, "force": False, "passive": False, "format": None,
            "spnq": None, "contexts": [], "comparison": "exact",
            "received": int(self.d.clock())}
        return self.proceed(pending, sess, info, None)

    def resume(self, pending_id: str, sess: IdpSession | None, info: RequestInfo) -> Outcome:
        """Back from the login page: finish the waiting request."""
        pending = get_json(self.d.store, key("saml_req", pending_id)) \
            if 0 < len(pending_id) <= 64 else None
        if not isinstance(pending, dict):
            exc = SamlError("the sign-in request expired; start again from the application",
                            code="request_expired")
            self.refuse(info, exc)
            raise exc
        return self.proceed(pending, sess, info, pending_id)

    def proceed(self, pending: dict[str, Any], sess: IdpSession | None, info: RequestInfo,
                pending_id: str | None) -> Outcome:
        """Log in first if needed (ForceAuthn, IsPassive: SAML Core §3.4.1), then answer."""
        sp = self.sp(pending["sp"])
        try:
            fmt = attrs.pick_format(pending["format"], sp.name_id_formats,
                                    self.options(sp).name_id_format)
            if pending["spnq"] not in (None, sp.entity_id):
                raise SamlStatusError(INVALID_NAMEID_POLICY,
                                      "SPNameQualifier must be the SP itself")
            if "prior" not in pending:  # ForceAuthn: a login after this request is needed
                pending["prior"] = _digest(sess.id) if sess is not None else None
            fresh = sess is not None and (not pending["force"] or (
                sess.auth_time >= pending["received"]
                and _digest(sess.id) != pending.get("prior")))
            if not fresh:
                if pending["passive"]:
                    raise SamlStatusError(NO_PASSIVE, "sign-in needs the person", top=RESPONDER)
                pid = pending_id or new_id()
                set_json(self.d.store, key("saml_req", pid), pending, self.config.pending_ttl)
                return NeedLogin(f"/saml/sso?resume={pid}", reauth=sess is not None)
            assert sess is not None
            if not sess.mfa and self._wants_mfa(sp.entity_id, pending):
                # step-up (REFEDS MFA profile §"Requesting MFA"); never with IsPassive
                if pending["passive"]:
                    raise SamlStatusError(NO_AUTHN_CONTEXT, "a second factor is needed",
                                          top=RESPONDER)
                pid = pending_id or new_id()
                set_json(self.d.store, key("saml_req", pid), pending, self.config.pending_ttl)
                return NeedMfa(f"/saml/sso?resume={pid}")
            attrs.check_authn_context(attrs.authn_context(self.tls, sess.mfa),
                                      pending["contexts"], pending["comparison"])
            if pending_id and self.d.store.take(key("saml_req", pending_id)) is None:
                raise SamlError("the sign-in request was already answered",
                                code="request_replayed")  # one answer per request, atomically
            return self.issue(sp, pending, fmt, sess, info)
        except SamlStatusError as exc:
            self._drop(pending_id)
            self.refuse(info, exc, sp.entity_id)
            return self.error_response(sp, pending, exc)

    def _wants_mfa(self, sp: str, pending: dict[str, Any]) -> bool:
        """The SP requires MFA, or its RequestedAuthnContext is met with a second factor and
        not without."""
        if sp in self.d.mfa_sps:
            return True
        contexts, comparison = pending["contexts"], pending["comparison"]
        return (not attrs.satisfies(attrs.authn_context(self.tls), contexts, comparison)
                and attrs.satisfies(attrs.authn_context(self.tls, True), contexts, comparison))

    def _drop(self, pending_id: str | None) -> None:
        if pending_id:
            self.d.store.delete(key("saml_req", pending_id))

    def error_response(self, sp: ServiceProvider, pending: dict[str, Any],
                       exc: SamlStatusError) -> PostForm:
        """A signed Response with an error status and no assertion (SAML Core §3.2.2)."""
        root = build.response(id=self.d.id_gen(), issuer=self.entity_id, now=self.d.clock(),
                              destination=pending["acs"], in_response_to=pending["request_id"],
                              top=exc.top_status, sub=exc.sub_status, message=exc.description)
        root = self.sign(root, root)
        return self._post(pending, root)

    def _post(self, pending: dict[str, Any], root: etree._Element) -> PostForm:
        fields = {"SAMLResponse": encode_post(etree.tostring(root))}
        if pending.get("relay") is not None:
            fields["RelayState"] = pending["relay"]
        return PostForm(pending["acs"], fields)

    def issue(self, sp: ServiceProvider, pending: dict[str, Any], fmt: str,
              sess: IdpSession, info: RequestInfo) -> PostForm:
        """A signed Response with a signed (and maybe encrypted) assertion (SAML Profiles
        §4.1.4.2; SAML Core §6 for EncryptedAssertion)."""
        return issue(self, sp, pending, fmt, sess, info)


def _replayed(msg: Message) -> SamlError:
    return SamlError(f"the {type(msg).__name__} was already used", code="request_replayed")
