"""``idp mock-sp saml``: a small SAML service provider to try an IdP by hand or from CI.

Built on OneLogin's python3-saml in strict mode (an implementation independent of this IdP;
install the ``testing`` extra).  It publishes its metadata (``/metadata``), starts
SP-initiated login over HTTP-Redirect or HTTP-POST, signed or not, with or without
``ForceAuthn`` (``/login?binding=post&signed=1&force=1``), shows what it received (NameID and
format, attributes, AuthnContext, SessionIndex, which elements were signed, python3-saml's
verdict) and runs single logout both ways (``/logout``, ``/slo``): SAML Profiles §4.1, §4.4.
The last result is also served as JSON (``/last``) for scripts.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, Response, redirect, request, session
from lxml import etree

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
DS = "{http://www.w3.org/2000/09/xmldsig#}Signature"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


@dataclass
class MockSp:
    """The SP's identity (``base`` URL, key and certificate PEM) and what it last saw."""

    base: str
    idp: str
    key: str
    cert: str
    last: dict[str, Any] = field(default_factory=dict)
    _idp_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def entity_id(self) -> str:
        return self.base + "/metadata"

    def settings(self, *, signed: bool = False) -> dict[str, Any]:
        if not self._idp_settings:
            from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

            xml = requests.get(self.idp.rstrip("/") + "/saml/metadata", timeout=10).text
            self._idp_settings.update(OneLogin_Saml2_IdPMetadataParser.parse(xml)["idp"])
        body = "".join(line for line in self.cert.splitlines() if "-----" not in line)
        return {
            "strict": True, "debug": False,
            "sp": {"entityId": self.entity_id,
                   "assertionConsumerService": {"url": self.base + "/acs", "binding": POST},
                   "singleLogoutService": {"url": self.base + "/slo", "binding": REDIRECT},
                   "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                   "x509cert": body, "privateKey": self.key},
            "idp": self._idp_settings,
            "security": {"authnRequestsSigned": signed, "logoutRequestSigned": True,
                         "logoutResponseSigned": True, "wantAssertionsSigned": True,
                         "wantMessagesSigned": False, "requestedAuthnContext": False,
                         "signatureAlgorithm":
                             "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                         "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256"},
        }


def signatures(xml: bytes) -> dict[str, bool]:
    """Which elements carry an enveloped signature (before python3-saml checks them)."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return {"response": False, "assertion": False}
    assertion = root.find(f"{{{SAML}}}Assertion")
    return {"response": root.find(DS) is not None,
            "assertion": assertion is not None and assertion.find(DS) is not None}


def create_app(sp: MockSp) -> Flask:
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    app = Flask("idp.mock_sp")
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_NAME"] = "mock_sp_session"

    def auth(*, signed: bool = False) -> Any:
        req = {"https": "on" if sp.base.startswith("https") else "off",
               "http_host": request.host, "script_name": request.path,
               "get_data": request.args.to_dict(), "post_data": request.form.to_dict(),
               "query_string": request.query_string.decode()}
        return OneLogin_Saml2_Auth(req, sp.settings(signed=signed))

    @app.get("/")
    def home() -> Response:
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td><pre>"
                       f"{html.escape(json.dumps(v, indent=1))}</pre></td></tr>"
                       for k, v in sp.last.items())
        links = " · ".join(
            f'<a href="/login?binding={b}&signed={s}&force={f}">{b}{" signed" if s else ""}'
            f'{" ForceAuthn" if f else ""}</a>'
            for b in ("redirect", "post") for s in (0, 1) for f in (0, 1))
        page = (f"<h1>mock SAML SP</h1><p>entity ID <code>{html.escape(sp.entity_id)}</code> "
                f'· <a href="/metadata">metadata</a> · <a href="/logout">single logout</a></p>'
                f"<p>sign in: {links}</p><table id=\"last\">{rows}</table>")
        return Response(page, mimetype="text/html")

    @app.get("/metadata")
    def metadata() -> Response:
        xml = auth().get_settings().get_sp_metadata()
        return Response(xml, mimetype="application/samlmetadata+xml")

    @app.get("/last")
    def last() -> Response:
        return Response(json.dumps(sp.last), mimetype="application/json")

    @app.get("/login")
    def login() -> Any:
        signed = request.args.get("signed") == "1"
        force = request.args.get("force") == "1"
        a = auth(signed=signed)
        if request.args.get("binding", "redirect") == "redirect":
            target = a.login(return_to="/", force_authn=force)
            session["request_id"] = a.get_last_request_id()
            return redirect(target)
        from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
        from onelogin.saml2.utils import OneLogin_Saml2_Utils

        settings = a.get_settings()
        req = OneLogin_Saml2_Authn_Request(settings, force_authn=force)
        session["request_id"] = req.get_id()
        xml = req.get_xml()
        if signed:
            xml = OneLogin_Saml2_Utils.add_sign(
                xml, sp.key, sp.cert,
                sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
        value = base64.b64encode(xml if isinstance(xml, bytes) else xml.encode()).decode()
        sso = settings.get_idp_data()["singleSignOnService"]["url"]
        return Response(
            f'<form method="post" action="{html.escape(sso)}" id="saml">'
            f'<input type="hidden" name="SAMLRequest" value="{value}">'
            '<input type="hidden" name="RelayState" value="/">'
            '<button type="submit">Continue to the identity provider</button></form>'
            "<script>document.getElementById('saml').submit()</script>", mimetype="text/html")

    @app.post("/acs")
    def acs() -> Any:
        a = auth()
        raw = base64.b64decode(request.form.get("SAMLResponse", ""), validate=False)
        expected = session.pop("request_id", None)
        a.process_response(request_id=expected)
        errors = a.get_errors()
        sp.last.clear()
        sp.last.update({
            "accepted": not errors and a.is_authenticated(),
            "errors": errors + ([a.get_last_error_reason()] if errors else []),
            "signed": signatures(raw), "in_response_to": a.get_last_response_in_response_to(),
            "expected_in_response_to": expected, "relay_state": request.form.get("RelayState"),
        })
        if not errors:
            sp.last.update({
                "name_id": a.get_nameid(), "name_id_format": a.get_nameid_format(),
                "session_index": a.get_session_index(),
                "authn_contexts": a.get_last_authn_contexts(), "attributes": a.get_attributes()})
            session["name_id"] = {"value": a.get_nameid(), "format": a.get_nameid_format(),
                                  "nq": a.get_nameid_nq(), "spnq": a.get_nameid_spnq(),
                                  "index": a.get_session_index()}
        return redirect("/", code=303)

    @app.get("/logout")
    def logout() -> Any:
        nid = session.get("name_id") or {}
        a = auth()
        target = a.logout(return_to="/", name_id=nid.get("value"),
                          session_index=nid.get("index"), nq=nid.get("nq"),
                          name_id_format=nid.get("format"), spnq=nid.get("spnq"))
        session["logout_id"] = a.get_last_request_id()
        return redirect(target)

    @app.route("/slo", methods=["GET", "POST"])
    def slo() -> Any:
        a = auth()
        target = a.process_slo(request_id=session.pop("logout_id", None),
                               delete_session_cb=lambda: session.pop("name_id", None))
        sp.last.clear()
        sp.last.update({"logout": "LogoutRequest" if "SAMLRequest" in request.args
                        else "LogoutResponse", "errors": a.get_errors(),
                        "accepted": not a.get_errors()})
        return redirect(target or "/", code=303)

    return app
