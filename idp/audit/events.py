"""Audit events of the service itself and of administrators: the configuration a process
loaded, keys it generated, and actions of the ``idp`` command."""

from __future__ import annotations

import getpass
import hashlib
from typing import Any

from idp.audit import Auditor, RequestInfo
from idp.config import Config
from idp.keys import KeyRing

SERVICE_AGENT = "idp"
CLI_AGENT = "idp-cli"


def config_hash(config: Config) -> str:
    """SHA-256 of the validated configuration (every field, secrets included, as JSON): two
    processes with the same hash run the same configuration; the hash reveals nothing."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def audit_start(auditor: Auditor, config: Config, keys: KeyRing, *, created_keys: bool,
                demo: bool = False) -> None:
    """``ConfigLoaded`` (the configuration's hash, the signing keys in use) and, when this
    start generated them, ``CreateSigningKeys``."""
    info = RequestInfo(user_agent=SERVICE_AGENT)
    kids = [k.kid for k in keys.keys if k.state == "active"]
    if created_keys:
        auditor.emit("CreateSigningKeys", info, identity_type="Service", user=SERVICE_AGENT,
                     additional={"keyIds": [k.kid for k in keys.keys], "folder": str(
                         config.keys.dir)})
    auditor.emit("ConfigLoaded", info, identity_type="Service", user=SERVICE_AGENT,
                 event_type="AwsServiceEvent", additional={
                     "configSha256": config_hash(config), "issuer": config.issuer,
                     "activeKeyIds": kids, "demo": demo})


def operator() -> str:
    """The operating-system account that ran an ``idp`` command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def admin_event(config: Config, event: str, **fields: Any) -> None:
    """Record one administrative action of the ``idp`` command in the configured sink
    (``userIdentity.type`` ``Admin``, the operator's account as the user)."""
    from idp.audit import open_sink

    auditor = Auditor(open_sink(config.audit.sink, config.audit.path, config=config.audit))
    try:
        auditor.emit(event, RequestInfo(user_agent=CLI_AGENT), identity_type="Admin",
                     user=operator(), **fields)
    finally:
        auditor.close()
