"""A direct WSGI path for the commonest browser SSO: ``GET /saml/sso`` with an AuthnRequest
(HTTP-Redirect binding, SAML Bindings §3.4) from a browser that is signed in.

Flask's request context, ``before_request`` hooks and response object cost about a tenth of
such a request, the two RSA signatures included.  This layer does what the ``saml.sso`` view
does, without them: the same :meth:`~idp.saml.SamlIdp.sso` call, the session read in the
round trip that claims the request's ID with the same checks
(:class:`~idp.web.saml.StoredSession`), the same page
(:func:`~idp.web.saml.assemble_post_page`) and the same headers
(:mod:`idp.web.security`, the form's Content-Security-Policy).

It answers only when the answer is the HTTP-POST form, and only for a request that needs
nothing else of Flask: a session cookie and a CSRF cookie present (no cookie to set), no
``?resume=``, and the page's parts already rendered by Flask for this script root (the
first SSO of a process goes through Flask).  Every other outcome (the login page, the
second step, a SAML error status, an error page) is computed once here and handed to the
view in the environ (:data:`~idp.web.saml.HANDED_OVER`), which renders it as it renders
its own: the AuthnRequest's ID is claimed once, audited once.  A person who must change
their password is handed over before anything is kept (the claim is taken back), and the
view applies its gate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.http import parse_cookie

from idp import logs
from idp.audit import RequestInfo
from idp.login.csrf import CSRF_COOKIE, csrf_token
from idp.saml import Binding, PostForm, SamlError, SamlIdp
from idp.web import fastpath
from idp.web.fastpath import StartResponse, WsgiApp, base_headers, send
from idp.web.saml import (
    HANDED_OVER,
    POST_PARTS,
    PostParts,
    StoredSession,
    assemble_post_page,
    post_form_csp,
)

if TYPE_CHECKING:
    from idp.app import Components
    from idp.login.sessions import IdpSession

PATH = "/saml/sso"


class _ToFlask(Exception):  # noqa: N818 - a signal, not an error
    """Leave this request to Flask as it came (raised before anything was kept)."""


class _Session(StoredSession):
    """:class:`idp.web.saml.RequestSession` without Flask: a person who must change their
    password is left to the view, whose gate sends them to the change form."""

    def __init__(self, comps: Components, sid: str, info: RequestInfo) -> None:
        super().__init__(comps, sid)
        self.info = info

    def resolve(self, values: Sequence[bytes | None]) -> IdpSession | None:
        sess = self.checked(values, self.info)
        if sess is None or sess.pending is not None:
            return None  # a session waiting for its second step signs no one in
        if sess.extra.get("must_change"):
            raise _ToFlask
        return sess


class FastSso:
    """WSGI middleware: answer ``GET /saml/sso`` of a signed-in browser without Flask."""

    def __init__(self, app: WsgiApp, flask_app: Flask, comps: Components) -> None:
        self.app = app
        self.comps = comps
        self.idp: SamlIdp = comps.extras["saml"]
        self.parts: dict[str, PostParts] = flask_app.extensions.setdefault(POST_PARTS, {})
        self.cookie = comps.config.session.cookie_name
        self.own_consumer = comps.config.issuer.rstrip("/") + "/federation/saml"
        # the headers of every page but the CSP, which names this form's target
        self.headers = [(k, v) for k, v in base_headers("text/html; charset=utf-8",
                                                          tls=comps.config.tls)
                        if k != "Content-Security-Policy"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        query: str = environ.get("QUERY_STRING", "")
        script: str = environ.get("SCRIPT_NAME", "")
        parts = self.parts.get(script.rstrip("/")) if script.isascii() else None
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        sid, binding = cookies.get(self.cookie), cookies.get(CSRF_COOKIE)
        if parts is None or "resume" in query or not sid or not binding:
            return self.app(environ, start_response)
        info = RequestInfo(environ.get("REMOTE_ADDR") or "", environ.get("HTTP_USER_AGENT", ""),
                           logs.request_id(environ))
        try:
            try:
                msg = Binding.query(query)
            except SamlError as exc:
                self.idp.refuse(info, exc)
                raise
            outcome = self.idp.sso(msg, _Session(self.comps, sid, info), info)
        except _ToFlask:
            return self.app(environ, start_response)
        except Exception as exc:  # noqa: BLE001 - the view raises it again, for its handlers
            environ[HANDED_OVER] = exc
            return self.app(environ, start_response)
        if not isinstance(outcome, PostForm):
            environ[HANDED_OVER] = outcome
            return self.app(environ, start_response)
        fields = dict(outcome.fields)
        if outcome.action == self.own_consumer:  # as idp.web.saml._render
            fields["csrf_token"] = csrf_token(self.comps.secret, binding)
        body = assemble_post_page(parts, outcome.action, fields).encode()
        return send(start_response, 200, [
            *self.headers, ("Content-Security-Policy", post_form_csp(outcome.action))], body)


def install(app: Flask, comps: Components) -> None:
    """Put :class:`FastSso` in front of Flask (inside ProxyFix, as the other direct paths)."""
    fastpath.install(app, functools.partial(FastSso, flask_app=app, comps=comps))
