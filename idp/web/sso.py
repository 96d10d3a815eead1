"""IAM Identity Center–compatible APIs and the access portal page: Flask translation of
:mod:`idp.sso` only.

- ``<issuer>/sso-oidc/...``: the SSO OIDC API (``endpoint_url=<issuer>/sso-oidc``), plus
  ``GET /sso-oidc/authorize``, which hands the browser to ``/oauth2/authorize``
- ``<issuer>/sso-portal/...``: the SSO portal API (``endpoint_url=<issuer>/sso-portal``)
- ``GET,POST /start``: the access portal (``sso_start_url``) for a signed-in person

Both APIs are REST-JSON: every refusal is the API's own exception (``x-amzn-ErrorType``), with
its HTTP status — malformed JSON, a wrong content type or an oversize body included.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wrappers import Response

from idp.errors import UnavailableError
from idp.sso import Portal, SsoError, SsoOidc
from idp.sso.credentials import Person
from idp.sso.errors import invalid_request, portal_invalid
from idp.sso.portal import Page
from idp.sso.registration import Registrations
from idp.sso.sessions import SsoSessions
from idp.web import security
from idp.web.context import (
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    request_info,
)

bp = Blueprint("sso", __name__)
_JSON_TYPES = ("application/json", "application/x-amz-json-1.1", "application/x-amz-json-1.0")
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
BEARER = "x-amz-sso_bearer_token"


def sso_oidc() -> SsoOidc:
    api: SsoOidc = components().extras["sso_oidc"]
    return api


def portal() -> Portal:
    p: Portal = components().extras["sso_portal"]
    return p


def _json(body: dict[str, Any] | None, status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(body if body is not None else {}, separators=(",", ":")),
                    status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["x-amzn-RequestId"] = request_info().request_id
    resp.headers.update(headers or {})
    return resp


def _error(exc: SsoError) -> Response:
    return _json(exc.body(), exc.status, exc.headers())


def _body() -> dict[str, Any]:
    """The request's JSON object, or ``InvalidRequestException`` (wrong type, too big,
    malformed)."""
    if request.mimetype not in _JSON_TYPES:
        raise invalid_request("the body must be JSON (`application/json`)")
    limit = components().config.web.max_form_bytes
    if request.content_length is not None and request.content_length > limit:
        raise SsoError("InvalidRequestException", "the request body is too large", 413,
                       oauth="invalid_request")
    try:
        raw = request.get_data(cache=False)
    except (RequestEntityTooLarge, ClientDisconnected):
        raise SsoError("InvalidRequestException", "the request body is too large", 413,
                       oauth="invalid_request") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise invalid_request("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("the body must be a JSON object")
    return body


def _api(method: str, portal_api: bool) -> SsoError | None:
    if request.method != method:
        text = f"use {method}"
        return SsoError("InvalidRequestException", text, 405,
                        oauth=None if portal_api else "invalid_request")
    return None


# -- SSO OIDC ------------------------------------------------------------------------------

@bp.route("/sso-oidc/client/register", methods=_METHODS)
def register_client() -> Response:
    if (wrong := _api("POST", False)) is not None:
        return _error(wrong)
    return _json(sso_oidc().register_client(_body(), request_info()))


@bp.route("/sso-oidc/device_authorization", methods=_METHODS)
def start_device_authorization() -> Response:
    if (wrong := _api("POST", False)) is not None:
        return _error(wrong)
    return _json(sso_oidc().start_device_authorization(_body(), request_info()))


@bp.route("/sso-oidc/token", methods=_METHODS)
def create_token() -> Response:
    if (wrong := _api("POST", False)) is not None:
        return _error(wrong)
    if "aws_iam" in request.args:
        raise invalid_request("CreateTokenWithIAM is not supported")
    return _json(sso_oidc().create_token(_body(), request_info()))


@bp.get("/sso-oidc/authorize")
def authorize() -> Response:
    """The browser step of the authorization code flow (RFC 6749 §4.1.1)."""
    args = {k: request.args.get(k, "") for k in request.args}
    return redirect(sso_oidc().authorize_location(args), code=302)  # type: ignore[return-value]


# -- SSO portal ----------------------------------------------------------------------------

def _query(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise portal_invalid(f"repeated parameter `{name}`")
    return values[0] if values else None


def _page_args() -> Page:
    return Page(_query("next_token"), _query("max_result"))


def _token() -> str | None:
    return request.headers.get(BEARER)


@bp.route("/sso-portal/assignment/accounts", methods=_METHODS)
def list_accounts() -> Response:
    if (wrong := _api("GET", True)) is not None:
        return _error(wrong)
    return _json(portal().list_accounts(_token(), _page_args()))


@bp.route("/sso-portal/assignment/roles", methods=_METHODS)
def list_account_roles() -> Response:
    if (wrong := _api("GET", True)) is not None:
        return _error(wrong)
    return _json(portal().list_account_roles(_token(), _query("account_id"), _page_args()))


@bp.route("/sso-portal/federation/credentials", methods=_METHODS)
def get_role_credentials() -> Response:
    if (wrong := _api("GET", True)) is not None:
        return _error(wrong)
    return _json(portal().get_role_credentials(_token(), _query("account_id"),
                                               _query("role_name"), request_info()))


@bp.route("/sso-portal/logout", methods=_METHODS)
def logout() -> Response:
    if (wrong := _api("POST", True)) is not None:
        return _error(wrong)
    portal().logout(_token(), request_info())
    return _json(None)


@bp.errorhandler(SsoError)
def _sso_error(exc: SsoError) -> Response:
    return _error(exc)


@bp.errorhandler(UnavailableError)
def _unavailable(exc: UnavailableError) -> Response:
    if request.path.startswith(("/sso-oidc/", "/sso-portal/")):
        oauth = "temporarily_unavailable" if request.path.startswith("/sso-oidc/") else None
        err = SsoError("InternalServerException", exc.description, 503, oauth=oauth)
        return _json(err.body(), 503, {**err.headers(), "Retry-After": "5"})
    html = render_template("error.html", status=503, title="Service unavailable",
                           message=exc.description)
    return Response(html, status=503, mimetype="text/html")


# -- the access portal page ----------------------------------------------------------------

@bp.route("/start", methods=["GET", "POST"])
@bp.route("/start/", methods=["GET", "POST"])
def start() -> Response:
    """The person's accounts and roles, each with "get credentials" (the same path as
    ``GetRoleCredentials``) and the IdP-initiated sign-in to the AWS-style console."""
    sess = current_session()
    if sess is None:
        return login_redirect("/start")
    person = Person(sess.username, sess.subject, tuple(sess.groups), dict(sess.attributes),
                    tuple(sess.amr))
    p = portal()
    page: dict[str, Any] = {"error": None, "creds": None}
    status = 200
    if request.method == "POST":
        if not security.csrf_ok():
            page["error"], status = "The form expired. Please try again.", 400
        else:
            try:
                out = p.credentials_for(person, request.form.get("account_id"),
                                        request.form.get("role_name"), request_info())
                creds = out["roleCredentials"]
                page["creds"] = {**creds, "expires": datetime.fromtimestamp(
                    creds["expiration"] // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                page["role"] = f"{request.form.get('account_id')}/{request.form.get('role_name')}"
            except SsoError as exc:
                page["error"], status = exc.description.capitalize() + ".", exc.status
    accounts = [(acct, p.model.accounts[acct].alias if acct in p.model.accounts else None,
                 roles) for acct, roles in p.accounts(person).items()]
    html = render_template("sso_start.html", sess=sess, accounts=accounts,
                           region=p.sts.settings.region, start_url=p.core.url("/start"),
                           csrf_token=form_csrf_token(), **page)
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask, comps: Any) -> None:
    """Build the SSO APIs on the OIDC provider and the STS (registered after both)."""
    provider = comps.extras["oidc"]
    registrations = Registrations(comps.store, clock=provider.core.clock)
    provider.core.clients.dynamic = registrations.client
    sessions = SsoSessions(comps.store)
    comps.extras["sso_oidc"] = SsoOidc(provider, registrations, sessions)
    comps.extras["sso_portal"] = Portal(provider.core, comps.extras["sts"], sessions)
    app.register_blueprint(bp)
