"""The STS core: one object per process that answers AWS Query requests (no web framework).

:class:`StsService` holds the IAM model, the credential store, the assertion/token verifiers
and the audit emitter; :meth:`StsService.handle` takes a :class:`QueryRequest` and returns a
:class:`Result` (HTTP status + AWS XML).  Actions are handlers registered by name in
:data:`idp.sts.actions.ACTIONS` (an unknown one is ``InvalidAction``, STS API Reference "Common
Errors").
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.audit import Auditor, RequestInfo
from idp.errors import UnavailableError
from idp.iam import IamModel, PolicySet, SessionDescription, build_context
from idp.keys import KeyRing
from idp.store import Store
from idp.sts import protocol as p
from idp.sts.credentials import CredentialStore, LongTermKey, Session
from idp.sts.errors import StsError, err
from idp.sts.policies import documents_of
from idp.sts.saml import CertCache, SamlVerifier
from idp.sts.sigv4 import Caller, SignedParts, verify
from idp.sts.webidentity import JwksCache, WebIdentityVerifier

_POLICY_CACHE = 4096
RETRY_AFTER = 5
"""Seconds a client is asked to wait (``Retry-After``) when the store or directory is down."""

log = logging.getLogger("idp.sts")


def unavailable(debug: str = "") -> StsError:
    """A store or directory outage: ``ServiceUnavailable`` (503), "the request has failed due
    to a temporary failure of the server" (STS and IAM API References, "Common Errors")."""
    return err("ServiceUnavailable", "The service is temporarily unavailable, try again later",
               503, debug)


def internal_failure(debug: str = "") -> StsError:
    """A bug of ours: ``InternalFailure`` (500, "Common Errors")."""
    return err("InternalFailure", "An internal error occurred", 500, debug)


@dataclass(frozen=True)
class StsSettings:
    """What the core needs from :class:`idp.config.StsConfig` and the issuer."""

    issuer: str
    saml_clock_skew: int = 120
    token_clock_skew: int = 60
    default_duration: int = 3600
    region: str = "us-east-1"
    """The one region credential scopes may name (``sts.region``)."""


MfaDeviceCheck = Callable[[str, str, str], int]
"""Verify a TOTP code of the virtual MFA device ``serial`` registered for the long-term access
key ``access_key_id`` (arguments in that order, then the code); the time it was used, or raise
:class:`StsError`."""


class StsService:
    """The STS protocol core of one IdP process."""

    def __init__(self, settings: StsSettings, model: IamModel, keys: KeyRing, store: Store,
                 auditor: Auditor, secret: bytes, *,
                 long_term: Mapping[str, LongTermKey] | None = None,
                 clock: Callable[[], float] = time.time,
                 fetch_jwks: Callable[[str], bytes] | None = None) -> None:
        self.settings = settings
        self.model = model
        self.keys = keys
        self.store = store
        self.auditor = auditor
        self.secret = secret
        self.clock = clock
        self.credentials = CredentialStore(store, secret, clock, long_term)
        issuer = settings.issuer.rstrip("/")
        self.consumer_url = issuer + "/federation/saml"
        self.saml = SamlVerifier(model, CertCache(keys, issuer + "/saml/metadata"), store, clock,
                                 (self.consumer_url,), settings.saml_clock_skew)
        self.web_identity = WebIdentityVerifier(model, JwksCache(keys, issuer, fetch_jwks),
                                                clock, settings.token_clock_skew)
        self._sets: OrderedDict[str, PolicySet] = OrderedDict()
        self._lock = threading.Lock()
        self.trust_external_mfa = False
        """``mfa.trust_external_idps``: another IdP's assertion or token may say MFA."""
        self.mfa_devices: MfaDeviceCheck | None = None
        """Checks ``SerialNumber`` + ``TokenCode`` of a long-term key's virtual MFA device."""

    # -- time ------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- the Query API ---------------------------------------------------------------------
    def handle(self, req: p.QueryRequest) -> p.Result:
        """Answer one STS Query request; never raises.  A store or directory outage is
        ``503 ServiceUnavailable`` with ``Retry-After``; anything else unexpected is a bug:
        ``500 InternalFailure`` and a server log line."""
        rid = req.request_id or str(uuid.uuid4())
        info = RequestInfo(req.source_ip, req.user_agent, rid)
        action = req.params.get("Action", "")
        try:
            return p.Result(200, p.response(action, self.dispatch(req, info), rid))
        except StsError as exc:
            self.audit_refusal(action or "Unknown", info, exc, req)
            return p.Result(exc.status, p.error(exc, rid))
        except UnavailableError as exc:
            log.warning("sts %s: %s (%s)", action[:64] or "request", exc.description, exc.debug)
            return self.error_result(unavailable(exc.debug), rid, action, info, req)
        except Exception as exc:  # noqa: BLE001 - the API answers, it does not crash
            log.exception("sts %s: unexpected error", action[:64] or "request")
            return self.error_result(internal_failure(type(exc).__name__), rid, action, info,
                                     req)

    def error_result(self, exc: StsError, rid: str, action: str = "",
                     info: RequestInfo | None = None, req: p.QueryRequest | None = None
                     ) -> p.Result:
        """The AWS error document of ``exc`` (``Retry-After`` on a 503), audited when
        ``info`` is given (an audit sink that fails too does not hide the answer)."""
        if info is not None:
            try:
                self.audit_refusal(action or "Unknown", info, exc, req)
            except Exception:  # noqa: BLE001 - the answer matters more than its record
                log.exception("sts: the refusal could not be audited")
        headers = {"Retry-After": str(RETRY_AFTER)} if exc.status == 503 else {}
        return p.Result(exc.status, p.error(exc, rid), headers=headers)

    def dispatch(self, req: p.QueryRequest, info: RequestInfo) -> p.Xml:
        """Run one action; raise :class:`StsError` (the caller audits and serializes it)."""
        from idp.sts.actions import ACTIONS

        action = req.params.get("Action", "")
        if not action:
            raise err("MissingAction", "Missing Action")
        handler = ACTIONS.get(action)
        if handler is None:
            raise err("InvalidAction", f"Could not find operation {action[:64]} for version "
                      f"{req.params.get('Version', p.VERSION)[:16]}")
        version = req.params.get("Version")
        if version != p.VERSION:
            raise err("InvalidAction" if version else "MissingParameter",
                      f"Could not find operation {action} for version {version[:16]}"
                      if version else "The request must contain the parameter Version")
        caller = self.authenticate(req, "sts") if handler.signed else None
        return handler.run(self, req, caller, info)

    def authenticate(self, req: p.QueryRequest, service: str | None) -> Caller:
        """SigV4 (header or presigned) with issued or configured credentials, scoped to the
        configured region."""
        parts = SignedParts(req.method, req.path, req.query, req.headers, req.body)
        return verify(parts, self.credentials, self.clock, service, self.settings.region)

    # -- policies and context --------------------------------------------------------------
    def policy_set(self, session: Session | None) -> PolicySet:
        """The effective policies of a session: its role's policies plus session policies."""
        if session is None or session.role_arn is None:
            return PolicySet()
        if not session.session_policies:
            return self.model.policy_set(session.role_arn)
        hit = self._sets.get(session.access_key_id)
        if hit is not None:
            return hit
        ps = self.model.policy_set(session.role_arn, documents_of(session.session_policies))
        with self._lock:
            self._sets[session.access_key_id] = ps
            while len(self._sets) > _POLICY_CACHE:
                self._sets.popitem(last=False)
        return ps

    def caller_context(self, caller: Caller, source_ip: str | None = None,
                       secure: bool | None = None, extra: Mapping[str, Any] | None = None,
                       request_tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The request context (global condition keys) of a request signed by ``caller``."""
        s = caller.session
        role = self.model.roles.get(s.role_arn) if s and s.role_arn else None
        desc = SessionDescription(
            principal_arn=caller.arn, now=self.now(), role_arn=s.role_arn if s else None,
            principal_id=role.role_id if role else (caller.long_term.user_id
                                                    if caller.long_term else None),
            principal_tags=dict(s.tags) if s else {}, request_tags=dict(request_tags or {}),
            source_identity=s.source_identity if s else None,
            mfa_present=s.mfa if s else False,
            mfa_authenticated_at=datetime.fromtimestamp(s.mfa_time, UTC)
            if s and s.mfa and s.mfa_time is not None else None,
            token_issue_time=datetime.fromtimestamp(s.issued, UTC) if s else None,
            source_ip=source_ip or None, secure_transport=secure,
            requested_region=caller.region)
        ctx: dict[str, Any] = dict(build_context(desc))
        for k, v in (extra or {}).items():
            ctx.setdefault(str(k).lower(), v)
        return ctx

    # -- audit -----------------------------------------------------------------------------
    def audit_refusal(self, action: str, info: RequestInfo, exc: StsError,
                      req: p.QueryRequest | None = None, *,
                      client_id: str | None = None) -> None:
        extra: dict[str, Any] = {"debug": exc.debug} if exc.debug else {}
        if client_id is not None:
            extra["resourceServer"] = client_id
        if req is not None:
            for name in ("RoleArn", "PrincipalArn", "RoleSessionName"):
                if name in req.params:
                    extra[name] = req.params[name][:256]
        self.auditor.emit(action[:64], info, error_code=exc.code,
                          error_message=exc.description, additional=extra,
                          event_type="AwsApiCall")

    def audit_issue(self, action: str, info: RequestInfo, session: Session,
                    who: str | None, extra: Mapping[str, Any] | None = None) -> None:
        self.auditor.emit(action, info, user=who, identity_type="STS", resources=[
            {"ARN": session.role_arn or session.arn, "type": "AWS::IAM::Role"}],
            additional={"assumedRoleArn": session.arn, "accessKeyId": session.access_key_id,
                        "expiration": session.expires, "sessionTags": dict(session.tags),
                        "sourceIdentity": session.source_identity,
                        "packedPolicies": len(session.session_policies), **(extra or {})})
