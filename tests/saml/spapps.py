"""Real service providers for the tests, each a small Flask app served over HTTP:
OneLogin's python3-saml (an independent implementation) and a pysaml2 SP."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask, Response, redirect, request, session

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def make_cert(cn: str) -> tuple[str, str]:
    """A fresh RSA-2048 key and self-signed certificate (PEM) for an SP."""
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
            cert.public_bytes(serialization.Encoding.PEM).decode())


def _b64_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


class OneLoginSp:
    """python3-saml SP: strict mode, signed requests, wants signed messages and assertions."""

    def __init__(self, port: int, idp_url: str, *, encrypted: bool = False,
                 name: str = "onelogin") -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.entity_id = f"{self.base}/metadata"
        self.idp_url = idp_url
        self.key, self.cert = make_cert(name)
        self.encrypted = encrypted
        self.app = self._app()

    def settings(self, idp: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "strict": True, "debug": False,
            "sp": {
                "entityId": self.entity_id,
                "assertionConsumerService": {"url": f"{self.base}/acs", "binding": POST},
                "singleLogoutService": {"url": f"{self.base}/sls", "binding": REDIRECT},
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                "x509cert": _b64_body(self.cert), "privateKey": self.key,
            },
            "idp": idp or {"entityId": "x", "singleSignOnService": {"url": "http://x"},
                           "x509cert": ""},
            "security": {
                "authnRequestsSigned": True, "logoutRequestSigned": True,
                "logoutResponseSigned": True, "wantMessagesSigned": True,
                "wantAssertionsSigned": True, "wantAssertionsEncrypted": self.encrypted,
                "requestedAuthnContext": False, "signatureAlgorithm":
                    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            },
        }

    def metadata(self) -> str:
        from onelogin.saml2.settings import OneLogin_Saml2_Settings

        s = OneLogin_Saml2_Settings(self.settings(), sp_validation_only=True)
        return str(s.get_sp_metadata().decode() if isinstance(s.get_sp_metadata(), bytes)
                   else s.get_sp_metadata())

    def _auth(self) -> Any:
        from onelogin.saml2.auth import OneLogin_Saml2_Auth
        from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

        xml = requests.get(self.idp_url + "/saml/metadata", timeout=5).text
        idp = OneLogin_Saml2_IdPMetadataParser.parse(xml)["idp"]
        req = {"https": "off", "http_host": f"127.0.0.1:{self.port}",
               "script_name": request.path, "get_data": request.args.to_dict(),
               "post_data": request.form.to_dict(),
               "query_string": request.query_string.decode()}
        return OneLogin_Saml2_Auth(req, self.settings(idp))

    def _app(self) -> Flask:
        app = Flask(f"sp-{self.port}")
        app.secret_key = "sp-test-secret"
        app.config["SESSION_COOKIE_NAME"] = f"sp{self.port}"  # cookies ignore the port

        @app.get("/login")
        def login() -> Any:
            auth = self._auth()
            if request.args.get("binding") != "post":
                return redirect(auth.login(return_to=request.args.get("relay", "/"),
                                           force_authn=request.args.get("force") == "1"))
            from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
            from onelogin.saml2.utils import OneLogin_Saml2_Utils

            settings = auth.get_settings()
            req = OneLogin_Saml2_Authn_Request(settings)
            signed = OneLogin_Saml2_Utils.add_sign(req.get_xml(), self.key, self.cert)
            value = base64.b64encode(signed).decode()
            sso = settings.get_idp_data()["singleSignOnService"]["url"]
            return (f'<form method="post" action="{sso}"><input type="hidden" '
                    f'name="SAMLRequest" value="{value}"><input type="hidden" '
                    f'name="RelayState" value="post-relay"></form>')

        @app.post("/acs")
        def acs() -> Any:
            auth = self._auth()
            auth.process_response()
            if auth.get_errors():
                return Response(json.dumps({"errors": auth.get_errors(),
                                            "reason": auth.get_last_error_reason()}), 400)
            session["name_id"] = auth.get_nameid()
            session["session_index"] = auth.get_session_index()
            session["format"] = auth.get_nameid_format()
            session["spnq"] = auth.get_nameid_spnq()
            session["nq"] = auth.get_nameid_nq()
            return {"name_id": auth.get_nameid(), "attributes": auth.get_attributes(),
                    "session_index": auth.get_session_index(),
                    "relay_state": request.form.get("RelayState"),
                    "encrypted": b"EncryptedAssertion" in base64.b64decode(
                        request.form["SAMLResponse"]),
                    "enc_algs": [a.decode() for a in re.findall(
                        rb'EncryptionMethod Algorithm="([^"]+)"',
                        base64.b64decode(request.form["SAMLResponse"]))]}

        @app.get("/logout")
        def logout() -> Any:
            auth = self._auth()
            return redirect(auth.logout(
                name_id=session.get("name_id"), session_index=session.get("session_index"),
                name_id_format=session.get("format"), spnq=session.get("spnq"),
                nq=session.get("nq")))

        @app.get("/sls")
        def sls() -> Any:
            auth = self._auth()
            url = auth.process_slo(delete_session_cb=session.clear)
            if auth.get_errors():
                return Response(json.dumps({"errors": auth.get_errors(),
                                            "reason": auth.get_last_error_reason()}), 400)
            if url:
                return redirect(url)
            return {"logged_out": True}

        return app


class Pysaml2Sp:
    """A pysaml2 SP (Saml2Client) that signs its requests and wants signed responses."""

    def __init__(self, port: int, idp_url: str, workdir: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.entity_id = f"{self.base}/sp.xml"
        self.idp_url = idp_url
        self.key, self.cert = make_cert("pysaml2-sp")
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (self.dir / "sp.key").write_text(self.key)
        (self.dir / "sp.crt").write_text(self.cert)
        self.outstanding: dict[str, str] = {}
        self._client: Any = None
        self.app = self._app()

    def _config(self, idp_metadata: str | None) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "entityid": self.entity_id,
            "service": {"sp": {
                "endpoints": {"assertion_consumer_service": [(f"{self.base}/acs", POST)]},
                "authn_requests_signed": True, "want_response_signed": True,
                "want_assertions_signed": True, "allow_unsolicited": False,
                "allow_unknown_attributes": True,
                "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            }},
            "key_file": str(self.dir / "sp.key"), "cert_file": str(self.dir / "sp.crt"),
            "metadata": {},
        }
        if idp_metadata:
            path = self.dir / "idp.xml"
            path.write_text(idp_metadata)
            cfg["metadata"] = {"local": [str(path)]}
        return cfg

    def metadata(self) -> str:
        from saml2.config import SPConfig
        from saml2.metadata import create_metadata_string

        conf = SPConfig()
        conf.load(self._config(None))
        return create_metadata_string(None, config=conf, valid=None).decode()

    def client(self) -> Any:
        if self._client is None:
            from saml2.client import Saml2Client
            from saml2.config import SPConfig

            xml = requests.get(self.idp_url + "/saml/metadata", timeout=5).text
            conf = SPConfig()
            conf.load(self._config(xml))
            self._client = Saml2Client(conf)
        return self._client

    def _app(self) -> Flask:
        app = Flask(f"pysaml2-sp-{self.port}")

        @app.get("/login")
        def login() -> Any:
            binding = POST if request.args.get("binding") == "post" else REDIRECT
            client = self.client()
            reqid, info = client.prepare_for_authenticate(binding=binding,
                                                          relay_state="pysaml2-relay")
            self.outstanding[reqid] = "/"
            if binding == REDIRECT:
                return redirect(dict(info["headers"])["Location"])
            return info["data"]

        @app.post("/acs")
        def acs() -> Any:
            from saml2 import BINDING_HTTP_POST

            try:
                resp = self.client().parse_authn_request_response(
                    request.form["SAMLResponse"], BINDING_HTTP_POST, self.outstanding)
            except Exception as exc:  # noqa: BLE001 - the test reads the reason
                return Response(json.dumps({"errors": [repr(exc)]}), 400)
            raw = {a.name: [v.text for v in a.attribute_value]
                   for st in resp.assertion.attribute_statement for a in st.attribute}
            return {"name_id": resp.name_id.text, "attributes": raw, "ava": resp.ava,
                    "audience": resp.assertion.conditions.audience_restriction[0]
                    .audience[0].text, "relay_state": request.form.get("RelayState")}

        return app
