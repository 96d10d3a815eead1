"""The audit blueprint: ``GET /audit/keys`` (the public keys that verify the trail's digests)
and ``POST /cloudtrail`` (CloudTrail's ``LookupEvents``, AWS JSON 1.1 protocol, SigV4 with
this STS's credentials, authorized by the IAM engine as ``cloudtrail:LookupEvents``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from werkzeug.wrappers import Response

from idp.app import Components
from idp.audit.cloudtrail import CONTENT_TYPE, TARGET_PREFIX, CloudTrailError, LookupEvents
from idp.audit.index import AuditIndex
from idp.errors import UnavailableError
from idp.iam.decision import Request
from idp.iam.evaluate import PolicySet, evaluate
from idp.sts import StsError, StsService, build_request
from idp.sts.service import RETRY_AFTER
from idp.web.context import components, request_info

bp = Blueprint("audit", __name__)
log = logging.getLogger("idp.web.audit")
ACTION = "cloudtrail:LookupEvents"


def init_app(app: Flask, comps: Components) -> None:
    audit = comps.config.audit
    if audit.sink == "trail":
        index = AuditIndex(audit.dir, retention_days=audit.retention_days)
        comps.extras["cloudtrail"] = LookupEvents(index, comps.secret)
    app.register_blueprint(bp)


@bp.get("/audit/keys")
def audit_keys() -> Response:
    """Every public key that ever signed a digest of this trail (like CloudTrail's
    ``ListPublicKeys``: ``Fingerprint`` and the DER ``Value`` in base64), and its PEM."""
    audit = components().config.audit
    public = audit.keys_dir / "public"
    keys = []
    for pem in sorted(public.glob("*.pem")) if audit.sink == "trail" and public.is_dir() else []:
        text = pem.read_text()
        der = "".join(line for line in text.splitlines() if not line.startswith("-----"))
        keys.append({"Fingerprint": pem.stem, "Value": der, "Pem": text})
    resp = jsonify(PublicKeyList=keys)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def _answer(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, content_type=CONTENT_TYPE,
                    headers={"x-amzn-RequestId": request_info().request_id,
                             "Cache-Control": "no-store", **headers})


@bp.route("/cloudtrail", methods=["POST"])
@bp.route("/cloudtrail/", methods=["POST"])
def cloudtrail() -> Response:
    """``LookupEvents`` (CloudTrail API Reference); every other target is
    ``UnknownOperationException``."""
    comps = components()
    info = request_info()
    target = request.headers.get("X-Amz-Target", "")
    if target != TARGET_PREFIX + "LookupEvents":
        return _answer(CloudTrailError("UnknownOperationException",
                                       "unknown operation").body(), 400)
    svc: StsService = comps.extras["sts"]
    try:
        body = request.get_data(cache=True)
        req = build_request("POST", request.path, request.query_string.decode("latin-1"),
                            dict(request.headers), body, source_ip=info.source_ip,
                            user_agent=info.user_agent, secure=request.is_secure,
                            request_id=info.request_id)
        caller = svc.authenticate(req, "cloudtrail")
        session = caller.session
        if session is not None and session.revoked:
            raise StsError("the session was revoked", code="AccessDenied", status=403)
    except StsError as exc:
        svc.audit_refusal("LookupEvents", info, exc)
        return _answer(CloudTrailError(exc.code, exc.description).body(), exc.status)
    except UnavailableError as exc:
        log.warning("cloudtrail: %s (%s)", exc.description, exc.debug)
        return _answer({"__type": "ServiceUnavailableException",
                        "message": "the service is unavailable"}, 503,
                       **{"Retry-After": str(RETRY_AFTER)})
    who = {"user": caller.arn, "read_only": True,
           "additional": {"accessKeyId": caller.access_key_id}}
    policies = (svc.policy_set(session) if session is not None else
                svc.model.policy_set(caller.arn) if caller.arn in svc.model.roles
                else PolicySet())
    decision = evaluate(Request.make(caller.arn, ACTION, "*", None,
                                     svc.caller_context(caller, req.source_ip, req.secure)),
                        policies)
    if not decision.allowed:
        comps.auditor.emit("LookupEvents", info, error_code="AccessDeniedException",
                           error_message="not authorized", **who)  # type: ignore[arg-type]
        return _answer(CloudTrailError(
            "AccessDeniedException", f"User: {caller.arn} is not authorized to perform: "
            f"{ACTION} on resource: *").body(), 400)
    lookup: LookupEvents | None = comps.extras.get("cloudtrail")
    try:
        if lookup is None:
            raise CloudTrailError("UnsupportedOperationException",
                                  "the audit trail is not enabled (audit.sink: trail)")
        comps.auditor.flush()  # this process's queued records are in the trail before it
        result = lookup.handle(body)
    except CloudTrailError as exc:
        comps.auditor.emit("LookupEvents", info, error_code=exc.code,
                           error_message=exc.message, **who)  # type: ignore[arg-type]
        return _answer(exc.body(), exc.status)
    comps.auditor.emit("LookupEvents", info, **who)  # type: ignore[arg-type]
    return _answer(result)
