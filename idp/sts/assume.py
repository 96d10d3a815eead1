"""The three ``AssumeRole*`` actions (STS API Reference: ``AssumeRole``, ``AssumeRoleWithSAML``,
``AssumeRoleWithWebIdentity``; IAM User Guide, "Role chaining", "Passing session tags in AWS
STS", "Available keys for SAML-based AWS STS federation", "… for AWS web identity federation").

Each verifies its evidence, asks the IAM engine whether the role's trust policy allows the
action (plus ``sts:TagSession`` / ``sts:SetSourceIdentity`` when used), validates the session
policies and tags, and issues credentials whose lifetime is the earliest of the requested
duration, the assertion's ``SessionDuration`` and the role's ``MaxSessionDuration``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from idp.audit import RequestInfo
from idp.iam import IamError, PolicySet, Request, Role, SessionDescription, build_context, evaluate
from idp.sts.credentials import Session, new_access_key_id, new_secret
from idp.sts.errors import StsError, access_denied, err, invalid_token
from idp.sts.policies import SessionInputs, session_inputs
from idp.sts.protocol import Int, QueryRequest, Str, Xml
from idp.sts.sigv4 import Caller

if TYPE_CHECKING:
    from idp.sts.service import StsService

ARN_RE = r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD]+"
ROLE_ARN = Str("RoleArn", 20, 2048, ARN_RE, required=True)
PRINCIPAL_ARN = Str("PrincipalArn", 20, 2048, ARN_RE, required=True)
SESSION_NAME = Str("RoleSessionName", 2, 64, r"[\w+=,.@-]*", required=True)
SOURCE_IDENTITY = Str("SourceIdentity", 2, 64, r"[\w+=,.@-]*")
EXTERNAL_ID = Str("ExternalId", 2, 1224, r"[\w+=,.@:/-]*")
SAML_ASSERTION = Str("SAMLAssertion", 4, 100000, required=True)
WEB_TOKEN = Str("WebIdentityToken", 4, 20000, required=True)
PROVIDER_ID = Str("ProviderId", 4, 2048)
DURATION = Int("DurationSeconds", 900, 43200)
CHAIN_LIMIT = 3600


@dataclass(frozen=True)
class Grant:
    """What an Assume* call decided to issue."""

    role: Role
    session_name: str
    duration: int
    inputs: SessionInputs
    source_identity: str | None
    federation: Mapping[str, Any]
    chained: bool = False
    mfa: bool = False
    mfa_time: int | None = None


def role_of(svc: StsService, arn: str) -> Role:
    try:
        return svc.model.role(arn) if arn.startswith("arn:") else _no_role(arn)
    except IamError:
        _no_role(arn)
        raise


def _no_role(arn: str) -> Role:
    raise access_denied(f"Not authorized to perform sts:AssumeRole on resource: {arn[:256]}",
                        "no such role")


def duration_for(role: Role, requested: int | None, cap: int | None = None,
                 chained: bool = False, default: int = 3600) -> int:
    """The session length (``DurationSeconds`` rules of ``AssumeRole*``)."""
    if requested is not None and requested > role.max_session_duration:
        raise err("ValidationError", "The requested DurationSeconds exceeds the "
                  "MaxSessionDuration set for this role.")
    if chained and requested is not None and requested > CHAIN_LIMIT:
        raise err("ValidationError", "The requested DurationSeconds exceeds the 1 hour session "
                  "limit for roles assumed by role chaining.")
    d = requested if requested is not None else min(default, role.max_session_duration)
    if cap is not None:
        d = min(d, cap)
    return min(d, CHAIN_LIMIT) if chained else d


def check_trust(svc: StsService, role: Role, principal: str, action: str,
                ctx: Mapping[str, Any], policies: PolicySet, tagged: bool,
                source_identity: bool) -> None:
    """The role's trust policy (with the caller's own policies for ``AssumeRole``) must allow
    the action, and ``sts:TagSession``/``sts:SetSourceIdentity`` when they are used."""
    actions = [action] + (["sts:TagSession"] if tagged else []) + \
        (["sts:SetSourceIdentity"] if source_identity else [])
    for a in actions:
        d = evaluate(Request.make(principal, a, role.arn, None, ctx), policies)
        # a trust policy is never optional: within the account an identity policy alone would
        # do for other resources, for sts:AssumeRole* the trust policy itself must allow
        trusted = any(m.policy_type == "resource" and m.effect == "Allow" for m in d.matched)
        if not d.allowed or not trusted:
            message = (f"User: {principal} is not authorized to perform: {a} on resource: "
                       f"{role.arn}" if action == "sts:AssumeRole"
                       else f"Not authorized to perform {a}")
            raise access_denied(message, debug=str(d.to_json())[:500])


def issue(svc: StsService, g: Grant, info: RequestInfo, action: str, who: str | None,
          extra: Mapping[str, Any] | None = None) -> tuple[Session, str]:
    now = int(svc.clock())
    akid = new_access_key_id()
    session = Session(
        access_key_id=akid, secret=new_secret(),
        arn=f"arn:aws:sts::{g.role.account}:assumed-role/{g.role.name}/{g.session_name}",
        user_id=f"{g.role.role_id}:{g.session_name}", account=g.role.account, issued=now,
        expires=now + g.duration, kind="assumed-role", role_arn=g.role.arn,
        session_name=g.session_name, session_policies=g.inputs.documents,
        policy_arns=g.inputs.policy_arns, tags=dict(g.inputs.tags),
        transitive_tag_keys=g.inputs.transitive_tag_keys, source_identity=g.source_identity,
        mfa=g.mfa, chained=g.chained, federation=dict(g.federation),
        mfa_time=g.mfa_time if g.mfa else None)
    stored, token = svc.credentials.issue(session)
    svc.audit_issue(action, info, stored, who, extra)
    return stored, token


def credentials_xml(s: Session, token: str) -> Xml:
    return [("AccessKeyId", s.access_key_id), ("SecretAccessKey", s.secret),
            ("SessionToken", token),
            ("Expiration", datetime.fromtimestamp(s.expires, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"))]


def _common_xml(s: Session, token: str, g: Grant) -> list[tuple[str, Any]]:
    return [("Credentials", credentials_xml(s, token)),
            ("AssumedRoleUser", [("AssumedRoleId", s.user_id), ("Arn", s.arn)]),
            ("PackedPolicySize", g.inputs.packed_size if g.inputs.packed_size else None),
            ("SourceIdentity", s.source_identity)]


# -- AssumeRoleWithSAML -------------------------------------------------------------------

def assume_role_with_saml(svc: StsService, req: QueryRequest, caller: Caller | None,
                          info: RequestInfo) -> Xml:
    params = req.params
    role_arn, principal_arn = ROLE_ARN.get(params) or "", PRINCIPAL_ARN.get(params) or ""
    assertion = SAML_ASSERTION.get(params) or ""
    requested = DURATION.get(params)
    claims = svc.saml.verify(assertion, principal_arn)
    if (role_arn, principal_arn) not in claims.roles:
        raise access_denied("Not authorized to perform sts:AssumeRoleWithSAML",
                            "role pair not in the assertion")
    name = claims.session_name
    try:
        name = SESSION_NAME.get({"RoleSessionName": name or ""})
    except StsError:
        raise err("InvalidIdentityToken", "Invalid RoleSessionName attribute in the SAML "
                  "assertion") from None
    role = role_of(svc, role_arn)
    inputs = session_inputs(params, svc.model, extra_tags=claims.principal_tags,
                            extra_transitive=claims.transitive_tag_keys)
    provider_name = principal_arn.rsplit("/", 1)[-1]
    qualifier = base64.b64encode(hashlib.sha1(  # noqa: S324 - AWS's definition
        f"{claims.issuer}{role.account}/{provider_name}".encode()).digest()).decode()
    # IAM User Guide, "Available keys for SAML-based federation": saml:aud comes from the
    # Recipient of the SubjectConfirmationData, not from the Audience
    saml_ctx: dict[str, Any] = {"saml:aud": claims.recipient, "saml:iss": claims.issuer,
                                "saml:sub": claims.subject, "saml:sub_type": claims.subject_type,
                                "saml:namequalifier": qualifier}
    for attr, values in claims.attributes.items():
        short = attr.rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower()
        if short in ("edupersonaffiliation", "edupersonprincipalname", "uid", "cn", "mail",
                     "givenname", "sn", "commonname", "edupersonorgdn", "o", "ou"):
            saml_ctx[f"saml:{short}"] = values if len(values) > 1 else values[0]
    mfa_at = _saml_mfa(svc, principal_arn, claims.mfa_at)
    ctx = build_context(SessionDescription(
        principal_arn=principal_arn, now=svc.now(), request_tags=inputs.tags,
        source_identity=claims.source_identity, source_ip=req.source_ip or None, saml=saml_ctx,
        mfa_present=mfa_at is not None, mfa_authenticated_at=_dt(mfa_at)))
    check_trust(svc, role, principal_arn, "sts:AssumeRoleWithSAML", ctx,
                svc.model.trust_set(role.arn), bool(inputs.tags),
                claims.source_identity is not None)
    cap = claims.session_duration
    if claims.session_not_on_or_after is not None:
        left = int(claims.session_not_on_or_after - svc.clock())
        if left < 900:  # AWS's minimum session: the sign-in session is (almost) over
            raise err("InvalidIdentityToken", "The SAML session has ended "
                      "(SessionNotOnOrAfter)")
        cap = left if cap is None else min(cap, left)
    dur = duration_for(role, requested, cap, default=svc.settings.default_duration)
    svc.saml.mark_used(claims)
    g = Grant(role, name or "", dur, inputs, claims.source_identity,
              {k: v for k, v in saml_ctx.items()}, mfa=mfa_at is not None,
              mfa_time=None if mfa_at is None else int(mfa_at))
    s, token = issue(svc, g, info, "AssumeRoleWithSAML", claims.subject,
                     {"samlIssuer": claims.issuer, "assertionId": claims.assertion_id})
    return [*_common_xml(s, token, g), ("Subject", claims.subject),
            ("SubjectType", claims.subject_type), ("Issuer", claims.issuer),
            ("Audience", claims.audience), ("NameQualifier", qualifier)]


# -- AssumeRoleWithWebIdentity -------------------------------------------------------------

def assume_role_with_web_identity(svc: StsService, req: QueryRequest, caller: Caller | None,
                                  info: RequestInfo) -> Xml:
    params = req.params
    role_arn = ROLE_ARN.get(params) or ""
    name = SESSION_NAME.get(params) or ""
    token = WEB_TOKEN.get(params) or ""
    PROVIDER_ID.get(params)
    requested = DURATION.get(params)
    try:
        claims = svc.web_identity.verify(token)
    except RecursionError:  # a header or payload nested deeper than the JSON parser goes
        raise invalid_token("Couldn't parse the web identity token") from None
    role = role_of(svc, role_arn)
    inputs = session_inputs(params, svc.model, extra_tags=claims.principal_tags,
                            extra_transitive=claims.transitive_tag_keys)
    oidc: dict[str, Any] = dict(claims.condition_claims())
    mfa_at = _token_mfa(svc, claims.provider.url, claims.claims)
    ctx = build_context(SessionDescription(
        principal_arn=claims.provider.arn, now=svc.now(), request_tags=inputs.tags,
        source_ip=req.source_ip or None, oidc_issuer=claims.provider.url, oidc_claims=oidc,
        mfa_present=mfa_at is not None, mfa_authenticated_at=_dt(mfa_at)))
    check_trust(svc, role, claims.provider.arn, "sts:AssumeRoleWithWebIdentity", ctx,
                svc.model.trust_set(role.arn), bool(inputs.tags), False)
    dur = duration_for(role, requested, default=svc.settings.default_duration)
    g = Grant(role, name, dur, inputs, None,
              {"provider": claims.provider.condition_prefix, **oidc}, mfa=mfa_at is not None,
              mfa_time=None if mfa_at is None else int(mfa_at))
    s, tok = issue(svc, g, info, "AssumeRoleWithWebIdentity", claims.subject,
                   {"oidcIssuer": claims.issuer})
    return [*_common_xml(s, tok, g), ("SubjectFromWebIdentityToken", claims.subject),
            ("Audience", claims.audience), ("Provider", claims.provider.condition_prefix)]


# -- AssumeRole ----------------------------------------------------------------------------

def assume_role(svc: StsService, req: QueryRequest, caller: Caller | None,
                info: RequestInfo) -> Xml:
    assert caller is not None
    params = req.params
    role_arn = ROLE_ARN.get(params) or ""
    name = SESSION_NAME.get(params) or ""
    requested = DURATION.get(params)
    source_identity = SOURCE_IDENTITY.get(params)
    external_id = EXTERNAL_ID.get(params)
    mfa_time = device_mfa(svc, params, caller)
    s = caller.session
    if s is not None and s.revoked:
        raise access_denied(f"User: {caller.arn} is not authorized to perform: sts:AssumeRole "
                            f"on resource: {role_arn}", "session revoked")
    chained = s is not None and s.kind == "assumed-role"
    inherited = {k: v for k, v in (s.tags if s else {}).items()
                 if s and k in s.transitive_tag_keys}
    if s is not None and s.source_identity:
        if source_identity is not None and source_identity != s.source_identity:
            raise access_denied("The source identity of a chained session cannot be changed")
        source_identity = s.source_identity
    role = role_of(svc, role_arn)
    inputs = session_inputs(params, svc.model, inherited_tags=inherited, request_tags=True)
    extra: dict[str, Any] = {"sts:rolesessionname": name}
    if external_id is not None:
        extra["sts:externalid"] = external_id
    if inputs.transitive_tag_keys:
        extra["sts:transitivetagkeys"] = list(inputs.transitive_tag_keys)
    ctx = svc.caller_context(caller, req.source_ip, req.secure, extra, inputs.tags)
    if mfa_time is not None:  # the code given now wins over the caller session's own
        ctx["aws:multifactorauthpresent"] = True
        ctx["aws:multifactorauthage"] = max(0, int(svc.clock()) - mfa_time)
    own = svc.policy_set(s) if s else PolicySet()
    trust = svc.model.trust_set(role.arn)
    policies = PolicySet(identity=own.identity, resource=trust.resource,
                         boundaries=own.boundaries, session=own.session, scps=own.scps)
    # a carried source identity needs sts:SetSourceIdentity too (IAM User Guide, "Monitor and
    # control actions taken with assumed roles": role chaining)
    check_trust(svc, role, caller.arn, "sts:AssumeRole", ctx, policies, bool(inputs.tags),
                source_identity is not None)
    dur = duration_for(role, requested, chained=chained, default=svc.settings.default_duration)
    if mfa_time is None and s is not None and s.mfa:
        mfa_time = s.mfa_time
    g = Grant(role, name, dur, inputs, source_identity, {}, chained,
              mfa_time is not None or bool(s and s.mfa), mfa_time)
    new, token = issue(svc, g, info, "AssumeRole", caller.arn,
                       {"callerArn": caller.arn, "chained": chained})
    return _common_xml(new, token, g)


# -- MFA -----------------------------------------------------------------------------------

def _dt(when: float | None) -> datetime | None:
    return None if when is None else datetime.fromtimestamp(when, UTC)


def _saml_mfa(svc: StsService, principal_arn: str, mfa_at: float | None) -> float | None:
    """When the assertion's second factor was used, if the provider may say so: this IdP (a
    provider without metadata) always, another only with ``mfa.trust_external_idps``."""
    provider = svc.model.saml_providers.get(principal_arn)
    own = provider is not None and provider.metadata_file is None \
        and provider.metadata_xml is None
    return mfa_at if mfa_at is not None and (own or svc.trust_external_mfa) else None


def _token_mfa(svc: StsService, provider_url: str, claims: Mapping[str, Any]
               ) -> float | None:
    """A token whose ``amr`` (RFC 8176) lists ``mfa``, from this IdP or (with
    ``mfa.trust_external_idps``) another: the age counts from ``auth_time``, the sign-in,
    which is never after the second factor, so the age is never younger than the truth."""
    own = provider_url.rstrip("/") == svc.settings.issuer.rstrip("/")
    amr = claims.get("amr")
    auth_time = claims.get("auth_time")
    if not (own or svc.trust_external_mfa) or not isinstance(amr, list) or "mfa" not in amr:
        return None
    if isinstance(auth_time, bool) or not isinstance(auth_time, int):
        return None
    return float(auth_time)


SERIAL = Str("SerialNumber", 9, 256, r"[\w+=/:,.@-]*")
TOKEN_CODE = Str("TokenCode", 6, 6, r"[\d]*")


def device_mfa(svc: StsService, params: Mapping[str, str], caller: Caller) -> int | None:
    """``SerialNumber`` + ``TokenCode`` (``GetSessionToken``, ``AssumeRole``): the time the
    code was checked against the virtual MFA device of the caller's long-term key, ``None``
    when neither is given; one without the other, or a wrong, replayed or unknown one, is
    ``AccessDenied`` as AWS answers it."""
    serial, code = SERIAL.get(params), TOKEN_CODE.get(params)
    if serial is None and code is None:
        return None
    if serial is None or code is None:
        raise access_denied("MultiFactorAuthentication failed, must provide both MFA serial "
                            "number and one time pass code.")
    key_id = caller.long_term.access_key_id if caller.long_term else None
    if svc.mfa_devices is None or key_id is None:
        raise access_denied("MultiFactorAuthentication failed with invalid MFA one time pass "
                            "code. ", "no device for session credentials")
    return svc.mfa_devices(serial, key_id, code)
