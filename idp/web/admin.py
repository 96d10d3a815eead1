"""The web side of ``RevokeUser`` on ``POST /iam`` (see :mod:`idp.revocation_api`)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from flask import Response

from idp.audit import RequestInfo
from idp.iam.query import QueryCaller
from idp.revocation_api import revoke_user_query
from idp.web.context import components


def _subject_of(username: str) -> str | None:
    directory = components().directory
    find = getattr(directory, "subject_of", None)  # the file directory knows disabled people
    if callable(find):
        found = find(username)
        return found if isinstance(found, str) else None
    person = directory.lookup(username)
    return person.subject if person else None


def revoke_user_response(params: Mapping[str, str], caller: QueryCaller, caller_arn: str,
                         info: RequestInfo) -> Response:
    comps = components()
    clients = [c.client_id for c in comps.config.oidc.clients]
    status, body, revoked = revoke_user_query(params, comps.iam, caller, comps.store,
                                              _subject_of, clients, int(time.time()),
                                              info.request_id)
    comps.auditor.emit("RevokeUser", info, user=caller_arn, identity_type="AssumedRole",
                       error_code=None if status == 200 else str(status),
                       additional={"userName": params.get("UserName", "")[:256],
                                   "reason": params.get("Reason", "")[:256],
                                   "revoked": revoked is not None})
    return Response(body, status, mimetype="text/xml")
