"""Alert rules over the audit stream: each record is counted as it is written, in the shared
store (so every worker and host counts together), per rule, subject and fixed window; a rule
fires once per window for a subject whose count reaches its threshold.  An alert is written
to the audit log (``AlertTriggered``) and, when configured, POSTed to a webhook as JSON signed
with HMAC-SHA256 (``X-Idp-Signature: sha256=<hex of HMAC(secret, timestamp "." body)>``,
``X-Idp-Timestamp``), the scheme of Stripe's and GitHub's webhooks.

What each kind counts (``subject``: what the threshold is per):

- ``spray``: distinct accounts that failed to sign in, per source IP (password spraying);
- ``stuffing``: distinct source IPs that failed to sign in, per account (credential stuffing);
- ``failed_account`` / ``failed_ip``: failed sign-ins per account / per source IP;
- ``lockout``: lockouts (``LoginLockout``, ``TooManyAttempts``) per account;
- ``sts_refusals``: refused STS calls per principal (the signer, or the role asked for);
- ``role_assumed``: role assumptions of the watched ``roles`` per role (break-glass roles);
- ``admin_action``: administrative actions (``userIdentity.type`` ``Admin``) per operator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from idp.audit import Auditor, AuditSink, RequestInfo, open_sink
from idp.config import AlertRule, AlertsConfig, Config
from idp.errors import UnavailableError

log = logging.getLogger("idp.audit.alerts")

ALERT_EVENT = "AlertTriggered"
STS_ACTIONS = frozenset({"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity",
                         "GetCallerIdentity", "GetSessionToken", "GetFederationToken",
                         "DecodeAuthorizationMessage", "GetAccessKeyInfo"})
ASSUME_ACTIONS = frozenset({"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity",
                            "GetRoleCredentials"})


def failed_sign_in(r: Mapping[str, Any]) -> bool:
    return r.get("eventName") == "Login" and r.get("errorCode") == "FailedAuthentication"


def lockout(r: Mapping[str, Any]) -> bool:
    return r.get("eventName") == "LoginLockout" or (
        r.get("eventName") == "Login" and r.get("errorCode") == "TooManyAttempts")


def user_of(r: Mapping[str, Any]) -> str:
    return str((r.get("userIdentity") or {}).get("userName") or "")


def role_of(r: Mapping[str, Any]) -> str:
    """The role an STS event names (resource, or the refused request's ``RoleArn``)."""
    for res in r.get("resources") or []:
        if isinstance(res, Mapping) and res.get("type") == "AWS::IAM::Role":
            return str(res.get("ARN", ""))
    extra = r.get("additionalEventData") or {}
    return str(extra.get("RoleArn", "")) if isinstance(extra, Mapping) else ""


def sts_principal(r: Mapping[str, Any]) -> str:
    return user_of(r) or role_of(r) or f"anonymous@{r.get('sourceIPAddress', '')}"


def observation(rule: AlertRule, r: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """``(subject, distinct member or None)`` when the record counts for the rule."""
    ip = str(r.get("sourceIPAddress") or "")
    kind = rule.kind
    if kind in ("spray", "stuffing", "failed_account", "failed_ip"):
        if not failed_sign_in(r):
            return None
        user = user_of(r)
        return {"spray": (ip, user), "stuffing": (user, ip), "failed_account": (user, None),
                "failed_ip": (ip, None)}[kind]
    if kind == "lockout":
        return (user_of(r) or ip, None) if lockout(r) else None
    if kind == "sts_refusals":
        return ((sts_principal(r), None)
                if r.get("eventName") in STS_ACTIONS and r.get("errorCode") else None)
    if kind == "role_assumed":
        role = role_of(r)
        if r.get("eventName") in ASSUME_ACTIONS and not r.get("errorCode") and role and (
                not rule.roles or role in rule.roles):
            return role, None
        return None
    if (r.get("userIdentity") or {}).get("type") == "Admin" and r.get("eventName") != ALERT_EVENT:
        return user_of(r) or "unknown", None
    return None


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class AlertEngine:
    """Counts records against the rules in a :class:`~idp.store.Store`."""

    def __init__(self, config: AlertsConfig, store: Any,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules = config.rules
        self.store = store
        self.clock = clock

    def observe(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The alerts this record fires (each rule at most once per subject and window)."""
        if record.get("eventName") == ALERT_EVENT:
            return []
        fired = []
        now = self.clock()
        for rule in self.rules:
            seen = observation(rule, record)
            if seen is None:
                continue
            subject, member = seen
            bucket = int(now) // rule.window
            base = f"idp:alert:{rule.name}:{bucket}:{_h(subject)}"
            ttl = rule.window + 60
            try:
                if member is not None and not self.store.add(f"{base}:m:{_h(member)}", b"1", ttl):
                    continue
                count = self.store.incr(f"{base}:n", ttl)
                if count < rule.threshold or not self.store.add(f"{base}:fired", b"1", ttl):
                    continue
            except UnavailableError as exc:
                log.warning("alert rule %s: the store is unavailable (%s)", rule.name, exc.debug)
                continue
            fired.append({"rule": rule.name, "kind": rule.kind, "subject": subject,
                          "count": count, "threshold": rule.threshold, "window": rule.window,
                          "windowStart": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                       time.gmtime(bucket * rule.window)),
                          "lastEventID": record.get("eventID"),
                          "lastEventTime": record.get("eventTime")})
        return fired


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp ``.`` body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    """Delivers alerts in the background (a request never waits for the receiver)."""

    def __init__(self, url: str, secret: str, timeout: float = 5.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, alert: dict[str, Any]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # after a fork, too
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="idp-alert-webhook")
                self._thread.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            log.error("alert webhook: queue full, alert %s dropped", alert.get("rule"))

    def _run(self) -> None:
        while True:
            self.deliver(self._queue.get())

    def deliver(self, alert: dict[str, Any]) -> bool:
        body = json.dumps(alert, separators=(",", ":"), sort_keys=True).encode()
        ts = str(int(time.time()))
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Idp-Timestamp": ts,
            "X-Idp-Signature": sign(self._secret, ts, body), "User-Agent": "idp-alerts"})
        for attempt in range(3):
            try:
                with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                    if 200 <= resp.status < 300:
                        return True
            except OSError as exc:
                log.warning("alert webhook: attempt %d failed: %s", attempt + 1, exc)
            time.sleep(0.5 * (attempt + 1))
        log.error("alert webhook: alert %s not delivered", alert.get("rule"))
        return False


class AlertingSink:
    """An :class:`~idp.audit.AuditSink` that writes through and runs the alert rules."""

    def __init__(self, inner: AuditSink, engine: AlertEngine, webhook: Webhook | None) -> None:
        self.inner = inner
        self.engine = engine
        self.webhook = webhook
        self._alerts = Auditor(inner)

    def write(self, record: Mapping[str, Any]) -> None:
        self.inner.write(record)
        for alert in self.engine.observe(record):
            log.warning("alert %s: %s reached %d (threshold %d in %d s)", alert["rule"],
                        alert["subject"], alert["count"], alert["threshold"], alert["window"])
            self._alerts.emit(ALERT_EVENT, RequestInfo(user_agent="idp-alerts"),
                              event_type="AwsCloudTrailInsight", identity_type="Service",
                              user="idp", additional=alert)
            if self.webhook is not None:
                self.webhook.send(alert)

    def close(self) -> None:
        self.inner.close()


def open_auditor(config: Config, store: Any) -> Auditor:
    """The process's auditor: the configured sink, with the alert rules when there are any
    (audit keys created here when ``keys.generate`` and missing: ``CreateAuditKeys``)."""
    from idp.keys import init_keys

    audit = config.audit
    created = (audit.sink == "trail" and audit.integrity and config.keys.generate
               and init_keys(audit.keys_dir, common_name="idp-audit"))
    sink = open_sink(config.audit.sink, config.audit.path, config=config.audit,
                     generate_keys=config.keys.generate)
    if audit.delivery == "async" and audit.sink != "none":
        from idp.audit.queued import QueuedSink

        sink = QueuedSink(sink, interval=audit.flush_interval_ms / 1000,
                          capacity=audit.queue_size)
    alerts = config.audit.alerts
    if alerts.rules:
        hook = (Webhook(alerts.webhook_url, alerts.webhook_secret)
                if alerts.webhook_url and alerts.webhook_secret else None)
        sink = AlertingSink(sink, AlertEngine(alerts, store), hook)
    auditor = Auditor(sink)
    if created:
        auditor.emit("CreateAuditKeys", RequestInfo(user_agent="idp"), identity_type="Service",
                     user="idp", additional={"folder": str(audit.keys_dir)})
    return auditor
