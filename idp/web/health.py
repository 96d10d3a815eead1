"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from idp.audit.queued import delivery_error
from idp.errors import UnavailableError
from idp.store import key
from idp.web.context import components

bp = Blueprint("health", __name__)
log = logging.getLogger("idp.web")

PROBE_KEY = key("ready", "probe")
PROBE_TTL = 10


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: the store answers and accepts a write (a small key with a short TTL: a Redis
    out of memory answers PING but refuses every write), and the directory answers; 503 with
    the reason otherwise; also 503 while the audit writer fails to write records (they wait in
    its queue, see docs/audit.md).  ``warnings`` lists store settings that may lose security keys
    (persistence off, an evicting policy): worth fixing, not a reason to take traffic away."""
    comps = components()
    checks = {"store": "ok", "directory": "ok"}
    try:
        comps.store.ping()
        try:
            comps.store.set(PROBE_KEY, b"1", PROBE_TTL)
        except UnavailableError as exc:
            checks["store"] = "refuses writes"
            log.error("readiness: the store refuses writes: %s", exc.debug)
    except UnavailableError as exc:
        checks["store"] = "unreachable"
        log.error("readiness: the store is unreachable: %s", exc.debug)
    try:
        comps.directory.ping()
    except UnavailableError as exc:
        checks["directory"] = "unreachable"
        log.error("readiness: the directory is unreachable: %s", exc.debug)
    audit_error = delivery_error(comps.auditor.sink)
    if audit_error is not None:
        checks["audit"] = "failing writes"
        log.error("readiness: audit records cannot be written: %s", audit_error)
    body: dict[str, object] = {"checks": checks}
    if checks["store"] != "unreachable":
        warnings = comps.store.durability_warnings()
        if warnings:
            body["warnings"] = warnings
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "unavailable", **body), 200 if ok else 503
