"""STS actions, registered explicitly by ``Action`` name (STYLE.md §4).

Each :class:`Action` says whether the request must be SigV4-signed (every action but the two
federated ones, STS API Reference "Authentication") and runs a handler that returns the
``<…Result>`` members.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from idp.audit import RequestInfo
from idp.iam import Request, evaluate
from idp.sts import assume
from idp.sts.authz import decode_message
from idp.sts.credentials import Session, new_access_key_id, new_secret
from idp.sts.errors import access_denied, err
from idp.sts.protocol import Int, QueryRequest, Str, Xml
from idp.sts.sigv4 import Caller

if TYPE_CHECKING:
    from idp.sts.service import StsService

Handler = Callable[["StsService", QueryRequest, Caller | None, RequestInfo], Xml]


@dataclass(frozen=True)
class Action:
    run: Handler
    signed: bool = True


def get_caller_identity(svc: StsService, req: QueryRequest, caller: Caller | None,
                        info: RequestInfo) -> Xml:
    """``GetCallerIdentity``: needs no permission, works even for revoked sessions."""
    assert caller is not None
    user_id = caller.session.user_id if caller.session else caller.long_term.user_id  # type: ignore[union-attr]
    return [("UserId", user_id), ("Account", caller.account), ("Arn", caller.arn)]


def get_session_token(svc: StsService, req: QueryRequest, caller: Caller | None,
                      info: RequestInfo) -> Xml:
    """``GetSessionToken``: long-term keys only; 900–129,600 s, default 43,200 s."""
    assert caller is not None
    duration = Int("DurationSeconds", 900, 129600).get(req.params) or 43200
    lt = caller.long_term
    if lt is None:
        assume.SERIAL.get(req.params)
        assume.TOKEN_CODE.get(req.params)
        raise access_denied("Cannot call GetSessionToken with session credentials")
    mfa_time = assume.device_mfa(svc, req.params, caller)
    now = int(svc.clock())
    session = Session(access_key_id=new_access_key_id(), secret=new_secret(),
                      arn=lt.principal_arn, user_id=lt.user_id, account=lt.account,
                      issued=now, expires=now + duration, kind="session-token",
                      mfa=mfa_time is not None, mfa_time=mfa_time)
    stored, token = svc.credentials.issue(session)
    svc.audit_issue("GetSessionToken", info, stored, lt.principal_arn)
    return [("Credentials", assume.credentials_xml(stored, token))]


def get_access_key_info(svc: StsService, req: QueryRequest, caller: Caller | None,
                        info: RequestInfo) -> Xml:
    """``GetAccessKeyInfo``: the account of an access key ID (16–128 ``\\w`` characters)."""
    akid = Str("AccessKeyId", 16, 128, r"[\w]*", required=True).get(req.params) or ""
    lt = svc.credentials.long_term.get(akid)
    if lt is not None:
        return [("Account", lt.account)]
    session = svc.credentials.peek(akid)
    if session is None:
        raise err("InvalidParameterValue", f"The access key ID {akid} is not known")
    return [("Account", session.account)]


def decode_authorization_message(svc: StsService, req: QueryRequest, caller: Caller | None,
                                 info: RequestInfo) -> Xml:
    """``DecodeAuthorizationMessage``: the caller needs ``sts:DecodeAuthorizationMessage``."""
    assert caller is not None
    encoded = Str("EncodedMessage", 1, 10240, required=True).get(req.params) or ""
    ctx = svc.caller_context(caller, req.source_ip, req.secure)
    d = evaluate(Request.make(caller.arn, "sts:DecodeAuthorizationMessage", "*", None, ctx),
                 svc.policy_set(caller.session))
    if not d.allowed or (caller.session is not None and caller.session.revoked):
        raise access_denied(f"User: {caller.arn} is not authorized to perform: "
                            "sts:DecodeAuthorizationMessage")
    message = decode_message(svc.secret, encoded)
    if message is None:
        raise err("InvalidAuthorizationMessageException", "The encoded message is invalid")
    return [("DecodedMessage", json.dumps(message, separators=(",", ":")))]


ACTIONS: dict[str, Action] = {
    "AssumeRole": Action(assume.assume_role),
    "AssumeRoleWithSAML": Action(assume.assume_role_with_saml, signed=False),
    "AssumeRoleWithWebIdentity": Action(assume.assume_role_with_web_identity, signed=False),
    "GetCallerIdentity": Action(get_caller_identity),
    "GetSessionToken": Action(get_session_token),
    "GetAccessKeyInfo": Action(get_access_key_info),
    "DecodeAuthorizationMessage": Action(decode_authorization_message),
}
