"""The STS blueprint: ``GET,POST /sts`` (AWS Query API), ``POST /sts/decide`` (the decision
endpoint for resource servers), ``POST /iam`` (the IAM Query subset behind SigV4 + the policy
engine) and ``GET,POST /federation/saml`` (the built-in AWS-style SP's consumer page).

Only translation lives here: HTTP in, :class:`idp.sts.QueryRequest` to the core, XML/JSON/HTML
out.  The core object is built once per process in :func:`init_app`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, g, redirect, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from idp.app import Components
from idp.errors import UnavailableError
from idp.iam.arn import Arn
from idp.iam.query import QueryCaller, handle_iam_query
from idp.iam.query_xml import error as iam_error
from idp.mfa.devices import INVALID, DeviceRefused, VirtualDevices
from idp.oidc import OAuthError, OAuthRequest
from idp.sts import StsError, StsService, StsSettings, build_request
from idp.sts.authz import DecisionQuery, decide, parse_bounded_json
from idp.sts.credentials import LongTermKey
from idp.sts.errors import access_denied
from idp.sts.saml import AWS_ATTR, NS, parse_safely
from idp.sts.service import RETRY_AFTER, unavailable
from idp.web import fastpath, security
from idp.web.admin import revoke_user_response
from idp.web.context import (
    components,
    current_session,
    form_csrf_token,
    login_redirect,
    mfa_redirect,
    request_info,
)
from idp.web.oidc import provider as oidc_provider
from idp.web.sts_fast import FastSts

bp = Blueprint("sts", __name__)
log = logging.getLogger("idp.web.sts")


def _device_check(devices: VirtualDevices) -> Callable[[str, str, str], int]:
    def check(serial: str, access_key_id: str, code: str) -> int:
        try:
            return devices.verify(serial, access_key_id, code)
        except DeviceRefused as exc:
            raise access_denied(INVALID, exc.reason) from None

    return check


def service() -> StsService:
    svc: StsService = components().extras["sts"]
    return svc


def init_app(app: Flask, comps: Components) -> None:
    """Build the STS core once and register the blueprint."""
    cfg = comps.config.sts
    long_term = {}
    for k in cfg.access_keys:
        user_id = "AIDA" + base64.b32encode(k.principal_arn.encode()).decode()[:17]
        long_term[k.access_key_id] = LongTermKey(k.access_key_id, k.secret_access_key,
                                                 k.principal_arn, user_id)
    settings = StsSettings(comps.config.issuer, cfg.saml_clock_skew, cfg.token_clock_skew,
                           cfg.default_duration, cfg.region)
    svc = StsService(settings, comps.iam, comps.keys, comps.store, comps.auditor,
                     comps.secret, long_term=long_term)
    svc.trust_external_mfa = comps.config.mfa.trust_external_idps
    svc.mfa_devices = _device_check(VirtualDevices(comps.config.mfa, comps.store,
                                                   comps.auditor))
    comps.extras["sts"] = svc
    app.register_blueprint(bp)
    # SDK requests skip Flask's per-request machinery (idp.web.sts_fast); inside ProxyFix
    # when there is one, so client addresses are the same as Flask's
    fastpath.install(app, functools.partial(
        FastSts, service=svc, max_body=comps.config.web.max_form_bytes, tls=comps.config.tls))


_MACHINE = frozenset({"/sts", "/sts/decide", "/iam"})


@bp.after_request
def _machine_headers(resp: Response) -> Response:
    """The machine endpoints answer as the fast path does: never cached, and no browser
    cookie (the CSRF binding of pages) on an API answer."""
    if request.path in _MACHINE:
        resp.headers.setdefault("Cache-Control", "no-store")
        g.pop("idp_csrf_binding", None)
    return resp


def _query_request() -> Any:
    info = request_info()
    body = request.get_data(cache=True)
    query = request.query_string.decode("latin-1")
    return build_request(request.method, request.path, query, dict(request.headers), body,
                         source_ip=info.source_ip, user_agent=info.user_agent,
                         secure=request.is_secure, request_id=info.request_id)


@bp.route("/sts", methods=["GET", "POST"])
def sts() -> Response:
    """AWS STS Query API (STS API Reference, "Making Query requests")."""
    try:
        req = _query_request()
    except StsError as exc:
        from idp.sts.protocol import error

        rid = request_info().request_id
        return Response(error(exc, rid), exc.status, mimetype="text/xml",
                        headers={"x-amzn-RequestId": rid})
    result = service().handle(req)
    return Response(result.body, result.status, mimetype=result.content_type,
                    headers={"x-amzn-RequestId": req.request_id, **result.headers})


# client authentication fields a resource server may put in the JSON body (RFC 6749 §2.3.1
# client_secret_post, RFC 7523 §2.2 private_key_jwt); client_secret_basic uses the header
_CLIENT_FIELDS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")


@bp.route("/sts/decide", methods=["POST"])
def sts_decide() -> Response:
    """The decision endpoint: JSON in (see :class:`idp.sts.DecisionQuery`), JSON out.  Only a
    confidential OAuth client of this IdP (the resource server) may ask, as at introspection
    (RFC 7662 §2.1): a signed request seen on the way must not let anyone else probe what its
    signer may do.

    A client with ``Authorization: Basic`` is authenticated before its body is read; the
    body (whose members carry the credentials of the other methods) is then bounded in size
    (``web.max_form_bytes``, like every other body) and JSON nesting
    (:data:`idp.sts.authz.MAX_JSON_DEPTH`) before it is parsed."""
    info = request_info()
    header = request.headers.get("Authorization")
    basic = header is not None and header[:6].lower() == "basic "
    try:
        client_id = _decide_client({}, header, info) if basic else None
        doc = _decide_document()
        if client_id is None or any(isinstance(doc.get(k), str) for k in _CLIENT_FIELDS):
            # credentials in the body (or in both places: refused as two methods)
            client_id = _decide_client(doc, header, info)
        query = DecisionQuery.from_json(doc)
        out = decide(service(), query, info, client_id=client_id)
    except OAuthError as exc:
        return Response(json.dumps(exc.body()), exc.status, mimetype="application/json",
                        headers={"WWW-Authenticate": 'Basic realm="sts-decide"',
                                 "Cache-Control": "no-store"})
    except _TooLarge as exc:
        return _decide_refused(413, "RequestEntityTooLarge", str(exc))
    except (ValueError, binascii.Error) as exc:
        return _decide_refused(400, "ValidationError", str(exc))
    except UnavailableError as exc:
        log.warning("sts/decide: %s (%s)", exc.description, exc.debug)
        return _decide_refused(503, "ServiceUnavailable", exc.description,
                               {"Retry-After": str(RETRY_AFTER)})
    return Response(json.dumps(out), 200, mimetype="application/json")


def _decide_client(doc: dict[str, Any], header: str | None, info: Any) -> str:
    """The resource server's ``client_id`` (``invalid_client`` refusals are audited)."""
    auth = OAuthRequest({k: doc[k] for k in _CLIENT_FIELDS if isinstance(doc.get(k), str)},
                        header, info)
    try:
        return oidc_provider().confidential_client(auth, "/sts/decide")
    except OAuthError as exc:
        components().auditor.emit("Decide", info, error_code=exc.code,
                                  error_message=exc.description,
                                  additional={"reason": exc.debug[:200]})
        raise


class _TooLarge(ValueError):
    """A body over the limit (413)."""


def _decide_document() -> dict[str, Any]:
    """The JSON object of the body, within the size and nesting bounds (``ValueError``)."""
    limit = components().config.web.max_form_bytes
    too_large = _TooLarge(f"the body is larger than {limit} bytes")
    if (request.content_length or 0) > limit:
        raise too_large
    try:  # a body without a length is cut at the same limit (MAX_CONTENT_LENGTH)
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    doc = parse_bounded_json(raw or b"null")
    if not isinstance(doc, dict):
        raise ValueError("a JSON object is required")
    return doc


def _decide_refused(status: int, code: str, message: str,
                    headers: dict[str, str] | None = None) -> Response:
    """A refusal in the endpoint's own shape: a Deny with an error code."""
    body = {"decision": "Deny", "reason": "bad request" if status < 500 else "unavailable",
            "error": {"code": code, "message": message[:200]}}
    return Response(json.dumps(body), status, mimetype="application/json", headers=headers)


@bp.route("/iam", methods=["POST"])
def iam() -> Response:
    """IAM Query subset: SigV4 with STS-issued credentials, authorized by the engine."""
    info = request_info()
    svc = service()
    try:
        req = _query_request()
        caller = svc.authenticate(req, "iam")
        if caller.session is not None and caller.session.revoked:
            raise StsError("the session was revoked", code="AccessDenied", status=403)
    except StsError as exc:
        svc.audit_refusal(request.form.get("Action", "IamQuery")[:64], info, exc)
        return Response(iam_error(exc.code, exc.description, info.request_id), exc.status,
                        mimetype="text/xml")
    except UnavailableError as exc:  # IAM API Reference, "Common Errors": ServiceUnavailable
        log.warning("iam: %s (%s)", exc.description, exc.debug)
        gone = unavailable(exc.debug)
        return Response(iam_error(gone.code, gone.description, info.request_id, status=503),
                        503, mimetype="text/xml", headers={"Retry-After": str(RETRY_AFTER)})
    session = caller.session
    qc = QueryCaller(caller.arn, svc.caller_context(caller, req.source_ip, req.secure),
                     [json.loads(d) for d in (session.session_policies if session else ())])
    if req.params.get("Action") == "RevokeUser":  # the admin API of `idp users revoke`
        return revoke_user_response(req.params, qc, caller.arn, info)
    status, body = handle_iam_query(req.params, svc.model, qc, info.request_id)
    action = req.params.get("Action", "IamQuery")[:64]
    svc.auditor.emit(action, info, user=caller.arn,
                     error_code=None if status < 400 else
                     "AccessDenied" if status == 403 else str(status),
                     read_only=action.startswith(("Get", "List", "Simulate")),
                     additional={"eventSource": "iam", "accessKeyId": caller.access_key_id,
                                 "roleName": req.params.get("RoleName", "")[:128] or None})
    return Response(body, status, mimetype="text/xml")


# -- /federation/saml --------------------------------------------------------------------

def _roles(saml_response: str) -> tuple[str, list[tuple[str, str]], bool]:
    """The provider and the roles of a verified assertion (not yet consumed), and whether it
    says a second factor was used."""
    svc = service()
    try:
        raw = base64.b64decode("".join(saml_response.split()), validate=True)
        root = parse_safely(raw)
    except (binascii.Error, ValueError):
        raise StsError("the SAML response is not valid", code="InvalidIdentityToken",
                       status=400) from None
    providers = []
    for v in root.iterfind(f".//saml:Attribute[@Name='{AWS_ATTR}Role']/saml:AttributeValue",
                           NS):
        for part in "".join(v.itertext()).split(","):
            if ":saml-provider/" in part:
                providers.append(part.strip())
    if not providers:
        raise StsError("the assertion names no role", code="InvalidIdentityToken", status=400)
    claims = svc.saml.verify(saml_response, providers[0])
    return (providers[0], [r for r in claims.roles if r[1] == providers[0]],
            claims.mfa_at is not None)


def _step_up(role_arn: str) -> Response | None:
    """A role that requires MFA picked with an assertion that does not say MFA: a second
    factor first (if this session has none), then a fresh assertion from the IdP back to this
    page with the role chosen (its ARN as RelayState)."""
    comps = components()
    if comps.mfa_policy is None or not comps.mfa_policy.for_role(role_arn):
        return None
    target = "/saml/idp-initiated?" + urlencode(
        {"sp": "urn:amazon:webservices", **({"RelayState": role_arn} if len(role_arn) <= 80
                                            else {})})
    sess = current_session()
    if sess is None:
        return login_redirect(target)
    if not sess.mfa:
        return mfa_redirect(target)
    return redirect(target, code=303)  # type: ignore[return-value]


@bp.route("/federation/saml", methods=["GET", "POST"])
def federation() -> Response:
    """The built-in SP's consumer: list the roles, assume the chosen one, show credentials."""
    svc = service()
    if request.method == "GET" or "SAMLResponse" not in request.form:
        return _page("sts_federation.html", 200 if request.method == "GET" else 400,
                     error=None if request.method == "GET" else "no SAML response")
    saml_response = request.form["SAMLResponse"]
    try:
        provider, roles, says_mfa = _roles(saml_response)
        chosen = request.form.get("role")
        if chosen is None and len(roles) == 1 and security.csrf_ok():
            # one role: no picker (the IdP's own POST form carried this browser's CSRF
            # token: see idp.web.saml); the same checks as when it is chosen
            chosen = roles[0][0]
        elif chosen is None:
            arns = [r[0] for r in roles]
            relay = request.form.get("RelayState")
            return _page("sts_federation.html", 200, accounts=_by_account(arns),
                         saml_response=saml_response, csrf_token=form_csrf_token(),
                         preselect=relay if relay in arns else arns[0] if arns else None)
        elif not security.csrf_ok():
            return _page("sts_federation.html", 403, error="the form expired, sign in again")
        if chosen not in {r[0] for r in roles}:
            raise StsError("that role is not in the assertion", code="AccessDenied",
                           status=403)
        if not says_mfa:
            stepped = _step_up(chosen)
            if stepped is not None:
                return stepped
        params = {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": chosen,
                  "PrincipalArn": provider, "SAMLAssertion": saml_response}
        info = request_info()
        req = build_request("POST", "/federation/saml", "", {}, b"", source_ip=info.source_ip,
                            user_agent=info.user_agent, request_id=info.request_id)
        req = type(req)(req.method, req.path, req.query, req.headers, req.body, params,
                        req.source_ip, req.user_agent, request.is_secure, info.request_id)
        try:
            result = dict(svc.dispatch(req, info))
        except StsError as exc:
            svc.audit_refusal("AssumeRoleWithSAML", info, exc, req)
            raise
        creds = dict(result["Credentials"])
        user = dict(result["AssumedRoleUser"])
        return _page("sts_credentials.html", 200, creds=creds, arn=user["Arn"],
                     region=svc.settings.region)
    except StsError as exc:
        return _page("sts_federation.html", exc.status, error=f"{exc.code}: {exc.description}")


@dataclass(frozen=True)
class _AccountRoles:
    """One account of the role picker: its ID, its alias if configured, its roles as
    ``(ARN, role name)``."""

    id: str
    alias: str | None
    roles: list[tuple[str, str]]


def _by_account(arns: list[str]) -> list[_AccountRoles]:
    """The roles of the assertion grouped by account (in the order they came), each named as
    IAM names it (the role's ``name``; the last part of the ARN's resource otherwise)."""
    model = components().iam
    groups: dict[str, list[tuple[str, str]]] = {}
    for arn in arns:
        parsed = Arn.parse(arn)
        known = model.roles.get(arn)
        name = known.name if known else (parsed.resource.rsplit("/", 1)[-1] if parsed else arn)
        groups.setdefault(parsed.account if parsed else "", []).append((arn, name))
    return [_AccountRoles(acct, getattr(model.accounts.get(acct), "alias", None), roles)
            for acct, roles in groups.items()]


def _page(template: str, status: int, **kw: Any) -> Response:
    kw.setdefault("error", None)
    kw.setdefault("accounts", [])
    kw.setdefault("preselect", None)
    html = render_template(template, **kw)
    return Response(html, status, mimetype="text/html")
