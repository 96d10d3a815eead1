"""``idp mock-rp oidc``: a small OpenID Connect relying party to try a provider by hand or
from CI.

Built on Authlib's Flask client: authorization code with PKCE S256 (RFC 7636) and a nonce,
the ID token validated by Authlib (OIDC Core §3.1.3.7), userinfo (§5.3), refresh
(RFC 6749 §6) and RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2).  It shows the ID
token's claims, the userinfo answer and the token response (tokens shortened); ``/last``
serves the same as JSON for scripts.  A public client is used when no secret is given.
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, redirect, request


@dataclass
class MockRp:
    base: str
    issuer: str
    client_id: str
    client_secret: str | None = None
    scope: str = "openid profile email"
    last: dict[str, Any] = field(default_factory=dict)
    token: dict[str, Any] = field(default_factory=dict)


def _short(token: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:16] + "…" if isinstance(v, str) and len(v) > 40 else v)
            for k, v in token.items() if k != "userinfo"}


def create_app(rp: MockRp) -> Flask:
    app = Flask("idp.mock_rp")
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_NAME"] = "mock_rp_session"
    oauth = OAuth(app)
    kwargs: dict[str, Any] = {"scope": rp.scope, "code_challenge_method": "S256"}
    if rp.client_secret is None:
        kwargs["token_endpoint_auth_method"] = "none"
    client = oauth.register(
        "idp", client_id=rp.client_id, client_secret=rp.client_secret,
        server_metadata_url=rp.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs=kwargs)

    @app.get("/")
    def home() -> Response:
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td><pre>"
                       f"{html.escape(json.dumps(v, indent=1))}</pre></td></tr>"
                       for k, v in rp.last.items())
        page = (f"<h1>mock OIDC RP</h1><p>client <code>{html.escape(rp.client_id)}</code> at "
                f"<code>{html.escape(rp.issuer)}</code> · <a href=\"/login\">sign in</a> · "
                '<a href="/refresh">refresh</a> · <a href="/logout">sign out</a></p>'
                f'<table id="last">{rows}</table>')
        return Response(page, mimetype="text/html")

    @app.get("/last")
    def last() -> Response:
        return Response(json.dumps(rp.last), mimetype="application/json")

    @app.get("/login")
    def login() -> Any:
        extra = {"prompt": request.args["prompt"]} if "prompt" in request.args else {}
        return client.authorize_redirect(rp.base + "/callback", **extra)

    @app.get("/callback")
    def callback() -> Any:
        rp.last.clear()
        if "error" in request.args:
            rp.last.update({"error": request.args["error"],
                            "error_description": request.args.get("error_description")})
            return redirect("/", code=303)
        try:
            token = client.authorize_access_token()
            info = client.userinfo(token=token)
        except Exception as exc:  # the RP's verdict is what this page shows
            rp.last.update({"error": type(exc).__name__, "error_description": str(exc)})
            return redirect("/", code=303)
        rp.token.clear()
        rp.token.update(token)
        rp.last.update({"id_token_claims": dict(token.get("userinfo") or {}),
                        "userinfo": dict(info), "token_response": _short(token)})
        return redirect("/", code=303)

    @app.get("/refresh")
    def refresh() -> Any:
        if not rp.token.get("refresh_token"):
            rp.last["refresh"] = "no refresh token (ask for offline_access)"
            return redirect("/", code=303)
        try:
            token = client.fetch_access_token(grant_type="refresh_token",
                                              refresh_token=rp.token["refresh_token"])
        except Exception as exc:
            rp.last["refresh"] = f"{type(exc).__name__}: {exc}"
            return redirect("/", code=303)
        rp.token.update(token)
        rp.last["refresh"] = _short(token)
        return redirect("/", code=303)

    @app.get("/logout")
    def logout() -> Any:
        end = client.load_server_metadata().get("end_session_endpoint")
        params = {"client_id": rp.client_id, "post_logout_redirect_uri": rp.base + "/"}
        if rp.token.get("id_token"):
            params["id_token_hint"] = rp.token["id_token"]
        rp.token.clear()
        rp.last.clear()
        rp.last["logout"] = "signed out"
        return redirect(f"{end}?{urlencode(params)}")

    return app
