"""The operational log (``idp.*`` loggers): text or JSON lines on stderr, each with the ID of
the request it was written for, the same ``requestID`` as the request's audit record.

The request ID is made once per request by :class:`RequestIdMiddleware`, the outermost WSGI layer
(around the Flask app and the direct WSGI paths alike), and put in the WSGI environ under
``idp.request_id`` and in a context variable that the log filter reads."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from idp.config import LoggingConfig

REQUEST_ID_ENV = "idp.request_id"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("idp_request_id", default="")

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def request_id(environ: dict[str, Any]) -> str:
    """The ID of this request (a new one outside :class:`RequestIdMiddleware`)."""
    rid = environ.get(REQUEST_ID_ENV)
    if not isinstance(rid, str):
        rid = environ[REQUEST_ID_ENV] = str(uuid.uuid4())
    return rid


class RequestIdMiddleware:
    """Give every request an ID, seen by the app (environ) and by the log (context)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        token = _request_id.set(request_id(environ))
        try:
            return self.app(environ, start_response)
        finally:
            _request_id.reset(token)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, requestID and
    the exception, if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            out["requestID"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s%(rid)s"


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", "")
        record.rid = f" (request {rid})" if rid else ""
        return super().format(record)


def configure(config: LoggingConfig) -> None:
    """Send the ``idp`` loggers to stderr in ``config.format``, at ``config.level`` (replacing
    what an earlier call installed)."""
    logger = logging.getLogger("idp")
    for handler in [h for h in logger.handlers if getattr(h, "idp_handler", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.idp_handler = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if config.format == "json" else _TextFormatter(
        TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(config.level)
