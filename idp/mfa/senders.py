"""How one-time codes reach people: email (SMTP) and text messages (AWS SNS or a webhook).

Every sender has one method, ``send(destination, text)``, and raises
:class:`idp.errors.UnavailableError` when the message cannot be handed over (the person is
told to try again; nothing is counted against them).

* :class:`SmtpSender`: ``smtplib`` with STARTTLS (RFC 3207), implicit TLS (RFC 8314 §3.3) or
  none (a relay on the same host), optional login.
* :class:`SnsSender`: ``sns:Publish`` to a phone number through boto3 (any endpoint URL).
* :class:`WebhookSender`: a JSON POST ``{"to", "message", "timestamp"}`` with
  ``X-Idp-Signature: sha256=<hex HMAC-SHA256 of the body>`` (key: the webhook secret); the
  receiver checks the signature and refuses old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any, Protocol

from idp.config import MfaSmtpConfig, MfaSnsConfig, MfaWebhookConfig
from idp.errors import UnavailableError

SIGNATURE_HEADER = "X-Idp-Signature"


class Sender(Protocol):
    def send(self, destination: str, text: str) -> None: ...


class SmtpSender:
    def __init__(self, config: MfaSmtpConfig, subject: str = "Your sign-in code") -> None:
        self.config = config
        self.subject = subject

    def send(self, destination: str, text: str) -> None:
        c = self.config
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = c.sender, destination, self.subject
        msg.set_content(text)
        try:
            if c.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, c.port, timeout=c.timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            with smtp:
                if c.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if c.username:
                    smtp.login(c.username, c.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise UnavailableError(debug=f"smtp {c.host}:{c.port}: {exc}") from exc


class SnsSender:
    def __init__(self, config: MfaSnsConfig) -> None:
        import boto3

        kwargs: dict[str, Any] = {"region_name": config.region}
        if config.endpoint_url:
            kwargs["endpoint_url"] = config.endpoint_url
        if config.access_key_id:
            kwargs["aws_access_key_id"] = config.access_key_id
            kwargs["aws_secret_access_key"] = config.secret_access_key
        self.client = boto3.client("sns", **kwargs)

    def send(self, destination: str, text: str) -> None:
        import botocore.exceptions

        try:
            self.client.publish(PhoneNumber=destination, Message=text, MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}})
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise UnavailableError(debug=f"sns publish: {exc}") from exc


def sign(secret: str, body: bytes) -> str:
    """The ``X-Idp-Signature`` value of a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, config: MfaWebhookConfig) -> None:
        self.config = config

    def send(self, destination: str, text: str) -> None:
        body = json.dumps({"to": destination, "message": text, "timestamp": int(time.time())},
                          separators=(",", ":")).encode()
        req = urllib.request.Request(self.config.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.config.secret, body)})
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout) as resp:  # noqa: S310
                if not 200 <= resp.status < 300:
                    raise UnavailableError(debug=f"webhook answered {resp.status}")
        except (OSError, urllib.error.URLError) as exc:
            raise UnavailableError(debug=f"webhook: {exc}") from exc
