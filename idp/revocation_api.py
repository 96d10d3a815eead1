"""``RevokeUser``, the admin API of ``idp users revoke``: an action of ``POST /iam`` (AWS
Query protocol, SigV4 with STS-issued credentials, checked by the caller), authorized by this
IdP's policy engine as action ``idp:RevokeUser`` on resource
``arn:aws:iam::<account>:user/idp/<UserName>`` — a policy must allow it (the demo's Admin
role allows ``*``).  Parameters ``UserName`` and optional ``Reason``; the answer carries
``RevokedAt`` and ``ConsentsDeleted``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from idp.iam import query_xml as x
from idp.iam.decision import Request
from idp.iam.evaluate import PolicySet, evaluate
from idp.iam.model import IamModel
from idp.iam.query import QueryCaller
from idp.revocation import revoke_everywhere
from idp.store import Store

ACTION = "RevokeUser"


def _role_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return None


def revoke_user_query(params: Mapping[str, str], model: IamModel, caller: QueryCaller,
                      store: Store, subject_of: Callable[[str], str | None],
                      client_ids: Iterable[str], now: int,
                      request_id: str) -> tuple[int, str, str | None]:
    """``(status, xml, username revoked or None)``; never raises for bad input."""
    username = params.get("UserName", "")
    if not username or len(username) > 256:
        return 400, x.error("MissingParameter", "The request must contain the parameter "
                            "UserName", request_id), None
    account = caller.arn.split(":")[4] if caller.arn.count(":") >= 5 else ""
    resource = f"arn:aws:iam::{account}:user/idp/{username}"
    role_arn = _role_of(caller.arn)
    policies = PolicySet()
    if role_arn is not None and role_arn in model.roles:
        policies = model.policy_set(role_arn, list(caller.session_policies))
    decision = evaluate(Request.make(caller.arn, f"idp:{ACTION}", resource, None,
                                     caller.context), policies)
    if not decision.allowed:
        return 403, x.error("AccessDenied", f"User: {caller.arn} is not authorized to "
                            f"perform: idp:{ACTION} on resource: {resource}", request_id,
                            status=403), None
    subject = subject_of(username)
    if subject is None:
        return 404, x.error("NoSuchEntity", f"The user with name {username} cannot be found.",
                            request_id, status=404), None
    deleted = revoke_everywhere(store, username, subject, client_ids, now)
    body = x.el("RevokedAt", str(now)) + x.el("ConsentsDeleted", str(deleted))
    return 200, x.response(ACTION, body, request_id), username
