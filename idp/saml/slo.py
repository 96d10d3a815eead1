"""Single logout (SAML Profiles §4.4), SP- and IdP-initiated, HTTP-Redirect and HTTP-POST.

The IdP ends its session first, then sends a signed LogoutRequest to every other SP that took
part in it, one after the other through the browser (the chain's state is kept in the store
under ``idp:saml_slo:<id>``), and finally answers the SP that asked with a LogoutResponse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree

from idp.audit import RequestInfo
from idp.saml import build
from idp.saml.errors import (
    PARTIAL_LOGOUT,
    REQUEST_DENIED,
    REQUESTER,
    SUCCESS,
    SamlError,
    SamlSignatureError,
)
from idp.saml.messages import (
    Binding,
    LogoutRequest,
    LogoutResponse,
    read_logout_request,
    read_logout_response,
    sign_redirect,
)
from idp.saml.metadata import REDIRECT, Endpoint, ServiceProvider
from idp.saml.outcomes import Done, Outcome, PostForm, Redirect
from idp.saml.xml import decode_message, encode_post, encode_redirect
from idp.store import get_json, key, new_id, set_json

if TYPE_CHECKING:
    from idp.login.sessions import IdpSession
    from idp.saml.core import SamlIdp

SLO_TTL = 600


class Logout:
    """The logout side of one :class:`SamlIdp`."""

    def __init__(self, idp: SamlIdp) -> None:
        self.idp = idp

    def handle(self, msg: Binding, sess: IdpSession | None, info: RequestInfo) -> Outcome:
        """A LogoutRequest from an SP, or an SP's LogoutResponse in a running chain.  A
        message that cannot be authenticated is a 4xx page; an authenticated LogoutRequest
        refused by the checks below is answered with a LogoutResponse (SAML Profiles §4.4.4)."""
        issuer: str | None = None
        try:
            request, response = msg.params.get("SAMLRequest"), msg.params.get("SAMLResponse")
            if request and response:
                raise SamlError("a message carries both SAMLRequest and SAMLResponse")
            if request:
                req = read_logout_request(root := self._decode(msg, "SAMLRequest"))
                issuer = req.issuer
                return self._request(msg, root, req, sess, info)
            if response:
                resp = read_logout_response(root := self._decode(msg, "SAMLResponse"))
                issuer = resp.issuer
                return self._response(msg, root, resp, info)
            raise SamlError("no SAMLRequest or SAMLResponse")
        except SamlError as exc:
            self.idp.refuse(info, exc, issuer)
            raise

    def _decode(self, msg: Binding, param: str) -> etree._Element:
        return decode_message(msg.params[param], redirect=msg.redirect,
                              limit=self.idp.config.max_message_bytes)

    def _request(self, msg: Binding, root: etree._Element, req: LogoutRequest,
                 sess: IdpSession | None, info: RequestInfo) -> Outcome:
        """SAML Profiles §4.4.4.1: a known SP, authenticated, fresh, sent to us, once."""
        idp = self.idp
        relay = idp.relay_state(msg.params)
        sp = idp.sp(req.issuer)
        # A LogoutRequest must be authenticated (SAML Profiles §4.4.3.1): signed whenever the
        # SP has a signing key; otherwise it must name this browser's session.
        signed = idp.check_signature(sp, root, msg, "SAMLRequest", bool(sp.signing_certs))
        mine = (sess.extra.get("saml", {}).get(sp.entity_id) if sess else None) or {}
        if not signed and not mine:
            raise SamlSignatureError("the LogoutRequest must be signed")
        try:
            idp.check_message(sp, req, idp.slo_url, destination_required=signed)
            # NotOnOrAfter: after it the recipient may discard the request (SAML Core §3.7.1)
            if req.not_on_or_after is not None and (
                    idp.d.clock() >= req.not_on_or_after + idp.config.clock_skew):
                raise SamlError("the LogoutRequest has expired", code="request_expired")
        except SamlError as exc:
            return self._refused(sp, req.id, relay, exc, info)
        if sess is not None and mine and req.name_id != mine.get("name_id"):
            raise SamlError("the LogoutRequest names another subject", status=403)
        state = self._end(sess, info, exclude=sp.entity_id)
        state["initiator"] = {"sp": sp.entity_id, "id": req.id, "relay": relay}
        return self._next(new_id(), state)

    def _refused(self, sp: ServiceProvider, in_response_to: str, relay: str | None,
                 exc: SamlError, info: RequestInfo) -> Outcome:
        """Answer a refused LogoutRequest at the SP's logout endpoint from its metadata with
        ``Requester``/``RequestDenied`` (SAML Core §3.2.2.2, §3.7.3.2); without one, the
        refusal is a 4xx page.  Nobody is signed out."""
        endpoint = sp.slo_endpoint()
        if endpoint is None:
            raise exc
        self.idp.refuse(info, exc, sp.entity_id)
        location = endpoint.response_location or endpoint.location
        root = build.response(
            id=self.idp.d.id_gen(), issuer=self.idp.entity_id, now=self.idp.d.clock(),
            destination=location, in_response_to=in_response_to, top=REQUESTER,
            sub=REQUEST_DENIED, message=exc.description, tag="LogoutResponse")
        return self._send(endpoint, location, "SAMLResponse", root, relay)

    def idp_initiated(self, sess: IdpSession | None, info: RequestInfo) -> Outcome:
        """The person signs out at the IdP: every SP of the session is told."""
        return self._next(new_id(), self._end(sess, info, exclude=None))

    def _end(self, sess: IdpSession | None, info: RequestInfo, exclude: str | None
             ) -> dict[str, Any]:
        others: list[dict[str, Any]] = []
        if sess is not None:
            saml = sess.extra.get("saml", {})
            for entity in sess.participants:
                sp = self.idp.sps.get(entity)
                if entity == exclude or entity not in saml or sp is None:
                    continue
                if sp.slo_endpoint() is not None:
                    others.append({"sp": entity, **saml[entity]})
            self.idp.d.sessions.destroy(sess.id)
            self.idp.d.auditor.emit("SamlLogout", info, user=sess.username, additional={
                "initiator": exclude or "idp", "participants": list(sess.participants)})
        return {"pending": others, "partial": False, "current": None, "initiator": None}

    def _next(self, sid: str, state: dict[str, Any]) -> Outcome:
        idp = self.idp
        if state["pending"]:
            target = state["pending"].pop(0)
            sp = idp.sp(target["sp"])
            endpoint = sp.slo_endpoint()
            assert endpoint is not None
            now = idp.d.clock()
            root = build.logout_request(
                id=idp.d.id_gen(), issuer=idp.entity_id, now=now,
                destination=endpoint.location,
                name_id=build.NameId(target["name_id"], target["format"], target.get("spnq"),
                                     target.get("nq")),
                session_index=target.get("session_index"),
                not_on_or_after=now + idp.config.assertion_lifetime)
            state["current"] = {"sp": sp.entity_id, "id": root.get("ID")}
            set_json(idp.d.store, key("saml_slo", sid), state, SLO_TTL)
            return self._send(endpoint, endpoint.location, "SAMLRequest", root, sid)
        initiator = state.get("initiator")
        if not initiator:
            return Done("Signed out", "You are signed out of the identity provider and of "
                        "every application you used through it.")
        sp = idp.sp(initiator["sp"])
        endpoint = sp.slo_endpoint()
        if endpoint is None:
            return Done("Signed out", "You are signed out.")
        root = build.response(
            id=idp.d.id_gen(), issuer=idp.entity_id, now=idp.d.clock(),
            destination=endpoint.response_location or endpoint.location,
            in_response_to=initiator["id"], top=SUCCESS,
            sub=PARTIAL_LOGOUT if state["partial"] else None, tag="LogoutResponse")
        return self._send(endpoint, endpoint.response_location or endpoint.location,
                          "SAMLResponse", root, initiator.get("relay"))

    def _send(self, endpoint: Endpoint, location: str, param: str, root: etree._Element,
              relay: str | None) -> Outcome:
        """Signed, by the SP's binding (SAML Bindings §3.4.4.1 / §3.5.4)."""
        idp = self.idp
        if endpoint.binding == REDIRECT:
            params = [(param, encode_redirect(etree.tostring(root)))]
            if relay is not None:
                params.append(("RelayState", relay))
            query = sign_redirect(params, idp.d.keys.active("RS256").private_key)
            return Redirect(location + ("&" if "?" in location else "?") + query)
        root = idp.sign(root, root)
        fields = {param: encode_post(etree.tostring(root))}
        if relay is not None:
            fields["RelayState"] = relay
        return PostForm(location, fields)

    def _response(self, msg: Binding, root: etree._Element, resp: LogoutResponse,
                  info: RequestInfo) -> Outcome:
        """SAML Profiles §4.4.4.2: the answer to the LogoutRequest of the chain that is still
        waiting for it (``InResponseTo``), from that SP, authenticated, fresh, sent to us, and
        taken once: the chain's state is consumed atomically before it moves on."""
        idp = self.idp
        sid = msg.params.get("RelayState") or ""
        state = get_json(idp.d.store, key("saml_slo", sid)) if len(sid) <= 64 else None
        if not isinstance(state, dict) or not state.get("current"):
            raise SamlError("no logout is in progress", code="unexpected_logout_response")
        current = state["current"]
        sp = idp.sp(resp.issuer)
        if sp.entity_id != current["sp"] or resp.in_response_to != current["id"]:
            raise SamlError("the LogoutResponse does not answer our LogoutRequest",
                            code="unexpected_logout_response")
        signed = idp.check_signature(sp, root, msg, "SAMLResponse", bool(sp.signing_certs))
        idp.check_message(sp, resp, idp.slo_url, destination_required=signed)
        if idp.d.store.take(key("saml_slo", sid)) is None:
            raise SamlError("the LogoutRequest was already answered",
                            code="request_replayed")
        if resp.status != SUCCESS:
            state["partial"] = True
        idp.d.auditor.emit("SamlLogoutResponse", info, additional={
            "serviceProvider": sp.entity_id, "status": resp.status})
        state["current"] = None
        return self._next(sid, state)
