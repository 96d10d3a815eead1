"""An example web application that signs people in two ways: OpenID Connect (Authlib's Flask
client: authorization code with PKCE) and SAML 2.0 (OneLogin's python3-saml SP, asking for a
fresh login with ForceAuthn).  Its tests (test_app.py) use only ``idp.testing``.

Run it against ``idp demo`` (see docs/testing.md)::

    python -m examples.flask_app.app --issuer http://127.0.0.1:8000 --port 8400
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, request, session, url_for
from markupsafe import escape
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


@dataclass
class Settings:
    base_url: str  # where this app is reached, e.g. http://127.0.0.1:8400
    issuer: str  # the identity provider
    client_id: str
    client_secret: str
    saml_key: str = ""  # PEM private key and certificate of the SAML SP (optional)
    saml_cert: str = ""


def _pem_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def create_app(cfg: Settings) -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_NAME"] = "example_session"
    oauth = OAuth(app)
    oauth.register("idp", client_id=cfg.client_id, client_secret=cfg.client_secret,
                   server_metadata_url=cfg.issuer + "/.well-known/openid-configuration",
                   client_kwargs={"scope": "openid profile email",
                                  "code_challenge_method": "S256"})
    idp_settings: dict[str, Any] = {}

    def saml_auth() -> OneLogin_Saml2_Auth:
        if not idp_settings:
            xml = requests.get(cfg.issuer + "/saml/metadata", timeout=5).text
            idp_settings.update(OneLogin_Saml2_IdPMetadataParser.parse(xml)["idp"])
        settings = {
            "strict": True,
            "sp": {"entityId": cfg.base_url + "/saml/metadata",
                   "assertionConsumerService": {"url": cfg.base_url + "/saml/acs",
                                                "binding": POST},
                   "x509cert": _pem_body(cfg.saml_cert), "privateKey": cfg.saml_key},
            "idp": idp_settings,
            # python3-saml asks for PasswordProtectedTransport by default: over plain HTTP (a
            # test run) the IdP can only state Password, and rightly refuses
            "security": {"wantAssertionsSigned": True, "wantMessagesSigned": True,
                         "requestedAuthnContext": cfg.base_url.startswith("https://")},
        }
        req = {"https": "off", "http_host": request.host, "script_name": request.path,
               "get_data": request.args.to_dict(), "post_data": request.form.to_dict()}
        return OneLogin_Saml2_Auth(req, settings)

    @app.get("/")
    def home() -> str:
        user = session.get("user")
        if not user:
            return '<p id="status">signed out</p><a href="/login/oidc">OIDC</a> ' \
                   '<a href="/login/saml">SAML</a>'
        return f'<p id="status">signed in as <b id="user">{escape(user["name"])}</b> ' \
               f'via {escape(user["via"])}</p>'

    @app.get("/login/oidc")
    def login_oidc() -> Any:
        return oauth.idp.authorize_redirect(url_for("callback", _external=True))

    @app.get("/callback")
    def callback() -> Any:
        if "error" in request.args:
            return f'<p id="status">refused: {escape(request.args["error"])}</p>', 403
        token = oauth.idp.authorize_access_token()
        session["user"] = {"name": token["userinfo"]["preferred_username"], "via": "oidc"}
        return redirect("/")

    @app.get("/login/saml")
    def login_saml() -> Any:
        auth = saml_auth()
        target = auth.login(return_to="/", force_authn=True)
        session["saml_request_id"] = auth.get_last_request_id()
        return redirect(target)

    @app.post("/saml/acs")
    def acs() -> Any:
        auth = saml_auth()
        expected = session.pop("saml_request_id", None)
        auth.process_response(request_id=expected)
        errors = auth.get_errors() + ([auth.get_last_error_reason() or ""]
                                      if auth.get_errors() else [])
        if not errors and expected is None:
            errors = ["unsolicited response"]  # this app only takes answers to its requests
        if not errors and auth.get_last_response_in_response_to() != expected:
            errors = ["response to another request"]
        if errors or not auth.is_authenticated():
            return f'<p id="status">refused: {escape(", ".join(errors))}</p>', 403
        session["user"] = {"name": auth.get_attribute(
            "urn:oid:0.9.2342.19200300.100.1.1")[0], "via": "saml"}
        return redirect("/")

    @app.get("/saml/metadata")
    def metadata() -> Any:
        settings = saml_auth().get_settings()
        return settings.get_sp_metadata(), 200, {"Content-Type": "application/xml"}

    return app


def main() -> None:  # pragma: no cover - a manual run against `idp demo`
    parser = argparse.ArgumentParser()
    parser.add_argument("--issuer", default="http://127.0.0.1:8000")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--client-id", default="demo-web")
    parser.add_argument("--client-secret", default="demo-web-secret")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    create_app(Settings(base, args.issuer, args.client_id, args.client_secret)).run(
        "127.0.0.1", args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
