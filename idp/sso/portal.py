"""The SSO portal API (botocore model ``sso`` 2019-06-10; "IAM Identity Center Portal API
Reference") at ``<issuer>/sso-portal``: ``ListAccounts``, ``ListAccountRoles``,
``GetRoleCredentials`` and ``Logout`` for the bearer token in ``x-amz-sso_bearer_token``.

The token must be a live access token of this IdP (signature, ``exp``, ``aud``, not revoked:
:func:`idp.oidc.endpoints.check_access_token`) with the ``sso:account:access`` scope, which
only clients registered through the SSO OIDC API get; other clients' tokens are
``UnauthorizedException``.  The accounts and roles are exactly what the role mapping
(:meth:`idp.iam.IamModel.roles_for`, client :data:`~idp.sso.credentials.AUDIENCE`) gives the
person; ``GetRoleCredentials`` for anything else is ``ForbiddenException`` before any STS work,
and then goes through the STS's trust evaluation (:mod:`idp.sso.credentials`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idp.audit import RequestInfo
from idp.iam.mapping import RoleGrant
from idp.iam.model import IamModel
from idp.oidc.core import Core
from idp.oidc.endpoints import check_access_token
from idp.oidc.errors import OAuthError
from idp.sso.credentials import AUDIENCE, Person, assume
from idp.sso.errors import SsoError, forbidden, portal_invalid, too_many, unauthorized
from idp.sso.registration import SCOPE
from idp.sso.sessions import SsoSessions
from idp.store import key
from idp.sts.errors import StsError
from idp.sts.service import StsService

ACCOUNT_ID = re.compile(r"^\d{12}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
MAX_RESULTS = 100
CREDENTIALS_PER_MINUTE = 60


@dataclass(frozen=True)
class Page:
    """``maxResults`` and ``nextToken`` of a list call (the token: an opaque offset)."""

    next_token: str | None = None
    max_results: str | None = None

    def window(self, total: int) -> tuple[int, int]:
        start = 0
        if self.next_token is not None:
            try:
                raw = base64.urlsafe_b64decode(self.next_token.encode() + b"==").decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise portal_invalid("invalid `next_token`") from None
            if not raw.startswith("o:") or not raw[2:].isdigit() or int(raw[2:]) > total:
                raise portal_invalid("invalid `next_token`")
            start = int(raw[2:])
        size = MAX_RESULTS
        if self.max_results is not None:
            m = self.max_results
            if not m.isdigit() or not 1 <= int(m) <= MAX_RESULTS:
                raise portal_invalid(f"`max_result` must be between 1 and {MAX_RESULTS}")
            size = int(m)
        return start, min(total, start + size)


def _next(end: int, total: int) -> dict[str, str]:
    if end >= total:
        return {}
    return {"nextToken": base64.urlsafe_b64encode(f"o:{end}".encode()).decode().rstrip("=")}


class Portal:
    """The four portal operations over the OIDC core (tokens) and the STS (credentials)."""

    def __init__(self, core: Core, sts: StsService, sessions: SsoSessions,
                 clock: Callable[[], float] | None = None) -> None:
        self.core = core
        self.sts = sts
        self.model: IamModel = sts.model
        self.sessions = sessions
        self.clock = clock or core.clock

    # -- who is asking ---------------------------------------------------------------------
    def person(self, token: str | None) -> Person:
        """The person a live SSO access token speaks for, or ``UnauthorizedException``."""
        if not token:
            raise unauthorized("no bearer token (`x-amz-sso_bearer_token`)")
        if len(token) > 16384:
            raise unauthorized()
        try:
            claims = check_access_token(self.core, token)
        except OAuthError as exc:
            raise unauthorized(debug=exc.description) from None
        if SCOPE not in str(claims.get("scope", "")).split():
            raise unauthorized(debug=f"token without the `{SCOPE}` scope")
        family = str(claims.get("fid") or "")
        rec = self.sessions.get(family)
        if rec is None or rec.get("subject") != claims.get("sub"):
            raise unauthorized(debug="no SSO session for the token's family")
        return Person(str(rec["username"]), str(rec["subject"]), tuple(rec["groups"]),
                      dict(rec["attributes"]), tuple(rec.get("amr") or ("pwd",)), family,
                      str(claims.get("client_id", "")), str(claims.get("jti", "")),
                      int(claims["exp"]))

    def grants(self, person: Person) -> list[RoleGrant]:
        """The roles the mapping gives the person, for portal sessions (OIDC providers)."""
        return self.model.roles_for(person.groups, person.mapping_attributes, AUDIENCE, "oidc")

    def accounts(self, person: Person) -> dict[str, list[tuple[str, str]]]:
        """Account ID → [(role name, role ARN)] in mapping order, accounts sorted."""
        out: dict[str, list[tuple[str, str]]] = {}
        for g in self.grants(person):
            role = self.model.roles.get(g.role_arn)
            if role is not None:
                out.setdefault(role.account, []).append((role.name, role.arn))
        return dict(sorted(out.items()))

    # -- operations ------------------------------------------------------------------------
    def list_accounts(self, token: str | None, page: Page) -> dict[str, Any]:
        """``ListAccounts`` (``GET /assignment/accounts``)."""
        accounts = list(self.accounts(self.person(token)))
        start, end = page.window(len(accounts))
        listed = []
        for acct in accounts[start:end]:
            info: dict[str, Any] = {"accountId": acct, "accountName": acct}
            found = self.model.accounts.get(acct)
            if found is not None and found.alias:
                info["accountName"] = found.alias
            listed.append(info)
        return {"accountList": listed, **_next(end, len(accounts))}

    def list_account_roles(self, token: str | None, account_id: str | None,
                           page: Page) -> dict[str, Any]:
        """``ListAccountRoles`` (``GET /assignment/roles``): empty for an account the person
        has no role in (which says nothing about whether it exists)."""
        person = self.person(token)
        if account_id is None or not ACCOUNT_ID.match(account_id):
            raise portal_invalid("`account_id` must be a 12-digit account ID")
        roles = self.accounts(person).get(account_id, [])
        start, end = page.window(len(roles))
        return {"roleList": [{"roleName": name, "accountId": account_id}
                             for name, _ in roles[start:end]], **_next(end, len(roles))}

    def get_role_credentials(self, token: str | None, account_id: str | None,
                             role_name: str | None, info: RequestInfo) -> dict[str, Any]:
        """``GetRoleCredentials`` (``GET /federation/credentials``)."""
        try:
            person = self.person(token)
        except SsoError as exc:
            self.core.auditor.emit("GetRoleCredentials", info, error_code=exc.code,
                                   error_message=exc.description,
                                   additional={"debug": exc.debug, "accountId": account_id,
                                               "roleName": role_name})
            raise
        return self.credentials_for(person, account_id, role_name, info)

    def credentials_for(self, person: Person, account_id: str | None, role_name: str | None,
                        info: RequestInfo) -> dict[str, Any]:
        """Credentials for one of the person's roles (the portal API and the ``/start`` page)."""
        if account_id is None or not ACCOUNT_ID.match(account_id):
            raise portal_invalid("`account_id` must be a 12-digit account ID")
        if role_name is None or not ROLE_NAME.match(role_name):
            raise portal_invalid("`role_name` must be an IAM role name")
        try:
            grants = self.grants(person)
            grant = next((g for g in grants if self._is(g.role_arn, account_id, role_name)),
                         None)
            if grant is None:
                raise forbidden(debug=f"the mapping gives `{person.username}` no role "
                                f"`{role_name}` in {account_id}")
            if person.family and self.core.state.store.incr(
                    key("ratelimit", f"ssocreds:{person.family}"), 60) > CREDENTIALS_PER_MINUTE:
                raise too_many()
            try:
                session, session_token = assume(self.sts, person, grant,
                                                [g.role_arn for g in grants], info)
            except StsError as exc:
                raise forbidden(debug=f"{exc.code}: {exc.description} {exc.debug}") from None
        except SsoError as exc:
            self._refused("GetRoleCredentials", info, person, exc,
                          accountId=account_id, roleName=role_name)
            raise
        return {"roleCredentials": {
            "accessKeyId": session.access_key_id, "secretAccessKey": session.secret,
            "sessionToken": session_token, "expiration": session.expires * 1000}}

    def _is(self, role_arn: str, account_id: str, role_name: str) -> bool:
        role = self.model.roles.get(role_arn)
        return role is not None and role.account == account_id and role.name == role_name

    def logout(self, token: str | None, info: RequestInfo) -> None:
        """``Logout`` (``POST /logout``): revoke the token and its refresh-token family
        (RFC 7009 §2.1), end the portal session."""
        person = self.person(token)
        now = self.core.now()
        self.core.state.revoke_jti(person.jti, person.expires - now + 1)
        self.core.state.revoke_family(person.family, self.core.config.refresh_family_ttl)
        self.sessions.forget(person.family)
        self.core.audit("SsoLogout", info, user=person.username, client_id=person.client_id)

    def _refused(self, action: str, info: RequestInfo, person: Person, exc: SsoError,
                 **data: Any) -> None:
        self.core.auditor.emit(action, info, user=person.username, error_code=exc.code,
                               error_message=exc.description,
                               additional={"debug": exc.debug, "clientId": person.client_id,
                                           **data})
