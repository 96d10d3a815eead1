"""``AssumeRoleWithWebIdentity`` over the AWS Query protocol (STS API Reference), unsigned
as AWS allows for this action, and the ``credential_process`` document (AWS CLI User Guide,
"Sourcing credentials with an external process")."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idp.client.errors import ClientError

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
MIN_DURATION = 900
TOO_LONG = "exceeds the MaxSessionDuration"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: str  # ISO 8601 UTC, as the STS wrote it
    assumed_role_arn: str = ""

    def process_json(self) -> dict[str, Any]:
        """The ``credential_process`` document (``Version`` 1)."""
        return {"Version": 1, "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key,
                "SessionToken": self.session_token, "Expiration": self.expiration}

    @classmethod
    def from_process_json(cls, data: dict[str, Any]) -> Credentials:
        return cls(str(data["AccessKeyId"]), str(data["SecretAccessKey"]),
                   str(data["SessionToken"]), str(data["Expiration"]),
                   str(data.get("AssumedRoleArn", "")))


class StsRefusal(ClientError):
    pass


def _text(root: ET.Element, path: str) -> str:  # noqa: F821
    node = root.find(path)
    return (node.text or "") if node is not None else ""


def assume_role_with_web_identity(sts_url: str, role_arn: str, token: str,
                                  duration: int | None, session_name: str) -> Credentials:
    import xml.etree.ElementTree as ET  # noqa: N817 - not needed on the cached path

    from idp.client.http import post_form

    fields = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
              "RoleArn": role_arn, "RoleSessionName": session_name,
              "WebIdentityToken": token}
    if duration is not None:
        fields["DurationSeconds"] = str(duration)
    status, raw = post_form(sts_url, fields, {"Accept": "text/xml"})
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        raise ClientError(f"{sts_url}: HTTP {status}, not XML") from None
    if status != 200:
        code = _text(root, f".//{NS}Code") or _text(root, ".//Code")
        msg = _text(root, f".//{NS}Message") or _text(root, ".//Message")
        raise StsRefusal(f"{code}: {msg}" if msg else code or f"HTTP {status}", code)
    r = f"{NS}AssumeRoleWithWebIdentityResult/"
    creds = Credentials(_text(root, f"{r}{NS}Credentials/{NS}AccessKeyId"),
                        _text(root, f"{r}{NS}Credentials/{NS}SecretAccessKey"),
                        _text(root, f"{r}{NS}Credentials/{NS}SessionToken"),
                        _text(root, f"{r}{NS}Credentials/{NS}Expiration"),
                        _text(root, f"{r}{NS}AssumedRoleUser/{NS}Arn"))
    if not (creds.access_key_id and creds.secret_access_key and creds.expiration):
        raise ClientError(f"{sts_url}: the answer holds no credentials")
    return creds


def clamped(call: Callable[[int | None], Credentials], duration: int | None,
            known_max: int | None, notice: Callable[[str], None]) -> tuple[Credentials, int | None]:
    """Assume the role for ``duration`` seconds, or for less when the role's
    ``MaxSessionDuration`` is shorter: never a failure for asking too long.

    The STS says only that the duration is too long (``ValidationError`` … "exceeds the
    MaxSessionDuration set for this role"), not the maximum, and a role's maximum is between
    one and twelve hours.  So the client steps down through whole hours (each refused request
    issues nothing); the duration found is remembered by the caller (``known_max``) so the next
    renewal asks it directly.  Returns the credentials and the duration they were issued for."""
    asked = duration
    if duration is not None and known_max is not None and duration > known_max:
        duration = known_max
    while True:
        try:
            creds = call(duration)
        except StsRefusal as exc:
            if duration is None or TOO_LONG not in exc.message or duration <= 3600:
                raise
            duration = max(3600, (duration - 1) // 3600 * 3600)
            continue
        if asked is not None and duration is not None and duration < asked:
            notice(f"--duration {asked} is above the role's MaxSessionDuration: "
                   f"credentials are for {duration} seconds")
        return creds, duration


def session_name(subject: str) -> str:
    """A ``RoleSessionName`` (2–64 of ``[\\w+=,.@-]``): the person's username."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "+=,.@-_") else "-"
                      for c in subject)[:64]
    return cleaned if len(cleaned) >= 2 else f"idp-{secrets.token_hex(4)}"
