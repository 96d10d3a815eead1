"""SAML 2.0 endpoints (DESIGN.md paths): translate HTTP to :mod:`idp.saml` and back."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request
from markupsafe import escape
from werkzeug.wrappers import Response

from idp.audit import RequestInfo
from idp.saml import Binding, Done, NeedLogin, Outcome, PostForm, SamlDeps, SamlError, SamlIdp
from idp.saml.core import SessionSource
from idp.saml.crypto import XmlCrypto
from idp.saml.idp_metadata import idp_metadata
from idp.saml.metadata import aws_sp, load_metadata
from idp.saml.outcomes import NeedMfa
from idp.saml.slo import Logout
from idp.store import get_json, key
from idp.web import security
from idp.web.context import (
    checked_session,
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    mfa_redirect,
    must_change_redirect,
    request_info,
    resume_param,
    set_current_session,
)

if TYPE_CHECKING:
    from idp.app import Components
    from idp.login.sessions import IdpSession

log = logging.getLogger("idp.saml")
bp = Blueprint("saml", __name__)
HANDED_OVER = "idp.saml.handed_over"
"""WSGI environ key: the :class:`~idp.saml.Outcome` (or the exception) of an AuthnRequest
that :mod:`idp.web.saml_fast` processed but does not answer itself (only the server puts
keys with dots in the environ; a client's headers become ``HTTP_*``)."""


def _idp() -> SamlIdp:
    idp: SamlIdp = components().extras["saml"]
    return idp


def _binding() -> Binding:
    """The SAML message of this request, read once from the raw query string (HTTP-Redirect)
    or from every form field (HTTP-POST); a repeated protocol parameter is refused."""
    try:
        if request.method == "GET":
            return Binding.query(request.query_string.decode("latin-1"))
        return Binding.form(request.form.items(multi=True))
    except SamlError as exc:
        _idp().refuse(request_info(), exc)
        raise


def post_form_csp(action: str) -> str:
    """The page's Content-Security-Policy: the form may post to ``action``'s origin only."""
    target = urlsplit(action)
    return ("default-src 'none'; style-src 'self'; script-src 'self'; "
            f"form-action {target.scheme}://{target.netloc}; frame-ancestors 'none'; "
            "base-uri 'none'")


def _render(outcome: Outcome) -> Response:
    if isinstance(outcome, PostForm):
        fields = dict(outcome.fields)
        if outcome.action == components().config.issuer.rstrip("/") + "/federation/saml":
            # our own consumer: this browser's CSRF token lets it skip its role picker
            # when there is a single role (idp.web.sts); never sent to another origin
            fields["csrf_token"] = form_csrf_token()
        html = post_page(outcome.action, fields)
        resp = Response(html, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = post_form_csp(outcome.action)
        return resp
    if isinstance(outcome, NeedLogin):
        return login_redirect(outcome.next_path, reauth=outcome.reauth)
    if isinstance(outcome, NeedMfa):
        return mfa_redirect(outcome.next_path)
    if isinstance(outcome, Done):
        html = render_template("saml_done.html", title=outcome.title, message=outcome.message)
        return Response(html, mimetype="text/html")
    return redirect(outcome.location)  # type: ignore[return-value]


PostParts = tuple[str, str, str, str, str]
POST_PARTS = "idp_saml_post_parts"
"""``app.extensions`` key: script root -> :func:`_post_parts` (also read by
:mod:`idp.web.saml_fast`)."""


_MARKS = ("\x00action\x00", "\x00n1\x00", "\x00v1\x00", "\x00n2\x00", "\x00v2\x00")


def _post_parts() -> PostParts:
    """``saml_post.html`` rendered once (per app and script root) with markers for the
    action and two fields, cut into what comes before the action, between it and the first
    field's name, between a name and its value, between two fields, and after the last."""
    cache: dict[str, PostParts] = current_app.extensions.setdefault(POST_PARTS, {})
    parts = cache.get(request.script_root)
    if parts is None:
        page = render_template("saml_post.html", action=_MARKS[0],
                               fields={_MARKS[1]: _MARKS[2], _MARKS[3]: _MARKS[4]})
        at = [page.index(m) for m in _MARKS]
        if at != sorted(at):
            raise RuntimeError("saml_post.html: the action, then the fields, in order")
        cut = [page[at[i] + len(_MARKS[i]):at[i + 1]] for i in range(3)]
        parts = (page[:at[0]], cut[0], cut[1], cut[2], page[at[4] + len(_MARKS[4]):])
        cache[request.script_root] = parts
    return parts


def post_page(action: str, fields: dict[str, str]) -> str:
    """The auto-submitting form of the HTTP-POST binding (SAML Bindings §3.5.4): what
    ``render_template("saml_post.html", action=…, fields=…)`` renders, escaped the same way,
    from the parts of :func:`_post_parts` (the page is static but for these)."""
    return assemble_post_page(_post_parts(), action, fields)


def assemble_post_page(parts: PostParts, action: str, fields: dict[str, str]) -> str:
    """:func:`post_page` from the parts of :func:`_post_parts` (no Flask needed)."""
    if not fields:
        raise ValueError("an HTTP-POST form carries at least one field")
    head, to_name, to_value, between, tail = parts
    out = [head, escape(action), to_name]
    last = len(fields) - 1
    for i, (name, value) in enumerate(fields.items()):
        out += [escape(name), to_value, escape(value), between if i < last else tail]
    return "".join(out)


def waiting_sp_name(pending_id: str) -> str | None:
    """Who the parked request ``/saml/sso?resume=<pending_id>`` signs in to, for the login
    page: the registered SP's display name from its metadata, else its entity ID."""
    idp = _idp()
    pending = get_json(idp.d.store, key("saml_req", pending_id)) \
        if 0 < len(pending_id) <= 64 else None
    sp = idp.sps.get(pending.get("sp", "")) if isinstance(pending, dict) else None
    return (sp.display_name or sp.entity_id) if sp is not None else None


@bp.get("/saml/metadata")
def metadata() -> Response:
    """The IdP's metadata (SAML Metadata §2.4.3)."""
    return Response(idp_metadata(_idp()), mimetype="application/samlmetadata+xml")


@bp.route("/saml/sso", methods=["GET", "POST"])
def sso() -> Response:
    """AuthnRequest over HTTP-Redirect (GET) or HTTP-POST; ``?resume=`` after login."""
    handed = request.environ.pop(HANDED_OVER, None)
    if handed is not None:  # idp.web.saml_fast did the work: render what it found
        if isinstance(handed, BaseException):
            raise handed
        return _render(handed)
    resume = resume_param()
    if request.method == "GET" and resume is not None:
        return _render(_idp().resume(resume, current_session(), request_info()))
    return _render(_idp().sso(_binding(), RequestSession(), request_info()))


class StoredSession(SessionSource):
    """The session of a cookie's ID, read in the round trip that claims the AuthnRequest's ID
    (no Flask here: :mod:`idp.web.saml_fast` uses it as it is)."""

    def __init__(self, comps: Components, sid: str | None) -> None:
        super().__init__()
        self.comps, self.sid = comps, sid
        self.read: list[str] = []

    def keys(self) -> list[str]:
        self.read = self.comps.sessions.read_keys(self.sid)
        return self.read

    def checked(self, values: Sequence[bytes | None], info: RequestInfo
                ) -> IdpSession | None:
        """The session from the values of :meth:`keys`, with the checks of every session
        read (:func:`~idp.web.context.checked_session`: revocation, the directory
        recheck); one waiting for its second step as it is."""
        sess, markers = self.comps.sessions.from_values(self.sid or "", self.read, values)
        if sess is None or sess.pending is not None:
            return sess
        return checked_session(self.comps, sess, markers, info)


class RequestSession(StoredSession):
    """This request's session (the ``before_request`` hooks leave it to the view:
    :func:`session_read_by_view`), kept as the request's, then the must-change gate."""

    def __init__(self) -> None:
        comps = components()
        super().__init__(comps, request.cookies.get(comps.config.session.cookie_name))

    def keys(self) -> list[str]:
        return super().keys() if "idp_session" not in g else []

    def resolve(self, values: Sequence[bytes | None]) -> IdpSession | None:
        if "idp_session" not in g:
            set_current_session(self.checked(values, request_info()))
        sess = current_session()
        gate = must_change_redirect(sess)
        if gate is not None:
            abort(gate)
        return sess


@bp.get("/saml/idp-initiated")
def idp_initiated() -> Response:
    """Unsolicited SSO to ``?sp=ENTITYID`` (SAML Profiles §4.1.5)."""
    return _render(_idp().idp_initiated(request.args.get("sp", ""),
                                        _binding().params.get("RelayState"),
                                        current_session(), request_info()))


@bp.route("/saml/slo", methods=["GET", "POST"])
def slo() -> Response:
    """Single logout: a LogoutRequest/LogoutResponse of an SP, or (a POST with our CSRF token
    and no SAML message) the person signing out everywhere at the IdP."""
    comps = components()
    logout: Logout = comps.extras["saml_logout"]
    binding = _binding()
    is_saml = "SAMLRequest" in binding.params or "SAMLResponse" in binding.params
    sess = current_session()
    if request.method == "POST" and not is_saml:
        if not security.csrf_ok():
            return Response(render_template("error.html", status=400, title="Request refused",
                                            message="missing or invalid CSRF token"), 400,
                            mimetype="text/html")
        resp = _render(logout.idp_initiated(sess, request_info()))
    else:
        resp = _render(logout.handle(binding, sess, request_info()))
    # the cookie goes with the session: a refused LogoutRequest (answered with a
    # LogoutResponse that says so) leaves the person signed in
    if (not is_saml or "SAMLRequest" in binding.params) and (
            sess is None or comps.sessions.get(sess.id) is None):
        security.clear_session_cookie(resp)
    return resp


def _roles_for(comps: Components) -> Any:
    def roles_for(groups: list[str], attributes: dict[str, str], sp: str) -> list[Any]:
        grants: list[Any] = comps.iam.roles_for(groups, attributes, sp, kind="saml")
        return grants

    return roles_for


def init_app(app: Flask, comps: Components, crypto: XmlCrypto | None = None) -> SamlIdp:
    """Build the SAML IdP once (metadata validated now) and register the blueprint."""
    config = comps.config
    loaded = load_metadata(config.metadata_dirs, builtin=[aws_sp(config.issuer)])
    for problem in loaded.problems:
        log.warning("SAML metadata skipped: %s", problem)
    for notice in loaded.notices:
        log.warning("SAML metadata: %s", notice)
    salt = hmac.new(comps.secret, b"saml-pairwise-nameid", hashlib.sha256).digest()
    idp = SamlIdp(SamlDeps(config.saml, config.issuer, comps.keys, comps.store, comps.auditor,
                           comps.sessions, loaded, salt, _roles_for(comps), crypto,
                           mfa_sps=frozenset(config.mfa.require.service_providers)))
    comps.extras["saml"] = idp
    comps.extras["saml_logout"] = Logout(idp)
    comps.extras["saml_metadata_problems"] = list(loaded.problems)
    app.register_blueprint(bp)
    return idp
