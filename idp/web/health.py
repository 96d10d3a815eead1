"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from idp.errors import UnavailableError
from idp.web.context import components

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: the store and the directory answer; 503 with the reason otherwise."""
    comps = components()
    problems: dict[str, str] = {}
    for name, probe in (("store", comps.store.ping), ("directory", comps.directory.ping)):
        try:
            probe()
        except UnavailableError:
            problems[name] = "unreachable"
    if problems:
        return jsonify(status="unavailable", checks={"store": "ok", "directory": "ok",
                                                     **problems}), 503
    return jsonify(status="ok", checks={"store": "ok", "directory": "ok"}), 200
