"""Temporary credentials through the real STS path: a SAML assertion for the built-in AWS
service provider, minted for the person as the IdP would (the ``Role`` attribute lists only the
roles the IAM mapping gives them), handed to ``AssumeRoleWithSAML`` (STS API Reference).

A role the mapping does not give the person is refused before anything is minted, and the STS
would refuse it anyway: the assertion does not name it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from idp.iam.errors import NoSuchEntity
from idp.saml.metadata import AWS_ENTITY_ID
from idp.store import Store
from idp.store.epoch import StoreEpoch
from idp.sts import StsService, StsSettings, build_request
from idp.testing import saml_mint
from idp.testing.errors import KitError
from idp.xmlsafe import parse_untrusted

if TYPE_CHECKING:
    from idp.app import Components

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass(frozen=True)
class Credentials:
    """Temporary credentials (STS ``Credentials`` data type)."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: str
    assumed_role_arn: str

    def boto3(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)`` / ``boto3.Session(...)``."""
        return {"aws_access_key_id": self.access_key_id,
                "aws_secret_access_key": self.secret_access_key,
                "aws_session_token": self.session_token}

    def env(self) -> dict[str, str]:
        """The AWS CLI's environment variables."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}


def role_arn(comps: Components, role: str) -> str:
    """A role given by ARN or by name (IAM role names compare case-insensitively)."""
    try:
        return comps.iam.role(role).arn
    except NoSuchEntity as exc:
        raise KitError(f"no role `{role}`", code="NoSuchEntity") from exc


def assume_params(comps: Components, user: str, role: str, *, policy: str | None,
                  duration: int | None, now: float | None = None, mfa: bool = False
                  ) -> dict[str, str]:
    """The ``AssumeRoleWithSAML`` parameters for ``user`` taking ``role`` (``mfa``: the
    assertion says REFEDS MFA, which this IdP's STS reads as ``aws:MultiFactorAuthPresent``)."""
    arn = role_arn(comps, role)
    overrides: dict[str, Any] = {} if now is None else {"now": now}
    minted, _ = saml_mint.prepare(comps, AWS_ENTITY_ID, user, mfa=mfa, **overrides)
    pairs = dict(saml_mint.roles_in(minted.data))
    if arn not in pairs:
        given = ", ".join(sorted(pairs)) or "none"
        raise KitError(f"the role mapping does not give `{user}` the role `{arn}` "
                       f"(it gives: {given})", code="AccessDenied")
    params = {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": arn,
              "PrincipalArn": pairs[arn],
              "SAMLAssertion": base64.b64encode(saml_mint.sign(minted)).decode()}
    if policy is not None:
        params["Policy"] = policy
    if duration is not None:
        params["DurationSeconds"] = str(duration)
    return params


def parse_result(status: int, body: bytes) -> Credentials:
    """Credentials from an ``AssumeRoleWithSAMLResponse``; :class:`KitError` for an error."""
    root = parse_untrusted(body, remove_comments=True)
    ns = {"s": STS_NS}
    if status != 200:
        code = root.findtext(".//{*}Code") or "Unknown"
        raise KitError(f"the STS refused: {code}: {root.findtext('.//{*}Message') or ''}",
                       code=code)
    c = root.find(".//s:Credentials", ns)
    if c is None:
        raise KitError("the STS answer has no credentials")
    return Credentials(c.findtext("s:AccessKeyId", "", ns), c.findtext("s:SecretAccessKey", "", ns),
                       c.findtext("s:SessionToken", "", ns), c.findtext("s:Expiration", "", ns),
                       root.findtext(".//s:AssumedRoleUser/s:Arn", "", ns))


class _EpochBefore(StoreEpoch):
    """The server's store and its one-time markers, seen with an epoch that began at
    ``began()`` (the server's own epoch is read, and left as it is)."""

    def __init__(self, store: Store, began: Callable[[], float]) -> None:
        super().__init__(store)
        self.began = began

    def claim(self, marker: str, ttl: int) -> tuple[bool, float]:
        claimed, _ = super().claim(marker, ttl)
        return claimed, self.began()


def in_process(comps: Components, params: dict[str, str], clock: Callable[[], float]
               ) -> Credentials:
    """Call the STS core of this IdP in process with another clock (for expired credentials:
    the same store, keys and secret, so the IdP itself knows them)."""
    sts = comps.config.sts
    settings = StsSettings(comps.config.issuer, sts.saml_clock_skew, sts.token_clock_skew,
                           sts.default_duration, sts.region)
    svc = StsService(settings, comps.iam, comps.keys, comps.store, comps.auditor, comps.secret,
                     clock=clock)
    # the assertion is back-dated on purpose, before the store's epoch (which protects replay
    # caches after a data loss, idp.store.epoch): this call sees an epoch older than it
    svc.saml.epoch = _EpochBefore(comps.store, lambda: clock() - 1)
    body = urlencode(params).encode()
    req = build_request("POST", "/sts", "", {"content-type": "application/x-www-form-urlencoded"},
                        body)
    result = svc.handle(req)
    return parse_result(result.status, result.body.encode())


def expired(comps: Components, user: str, role: str, policy: str | None) -> Credentials:
    """Credentials issued by this IdP's STS an hour and a minute ago for one hour."""
    then = time.time() - 3660
    params = assume_params(comps, user, role, policy=policy, duration=3600, now=then)
    return in_process(comps, params, lambda: then)


def revoke(comps: Components, creds: Credentials) -> list[str]:
    """Revoke every session of the credentials' role issued up to now (``idp sts
    revoke-sessions``); the role ARNs revoked."""
    svc: StsService = comps.extras["sts"]
    name = creds.assumed_role_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    account = creds.assumed_role_arn.split(":")[4]
    matches = [arn for arn, r in comps.iam.roles.items()
               if r.account == account and r.name == name]
    for arn in matches:
        svc.credentials.revoke_role_sessions(arn, before=int(time.time()) + 1)
    return matches


def unrevoke(comps: Components, role_arns: list[str]) -> None:
    """Lift the kit's revocations (a marker at time 0 revokes nothing)."""
    svc: StsService = comps.extras["sts"]
    for arn in role_arns:
        svc.credentials.revoke_role_sessions(arn, before=0)


def expiration(creds: Credentials) -> datetime:
    return datetime.fromisoformat(creds.expiration.replace("Z", "+00:00"))
