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
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from idp import ids
from idp.config import LoggingConfig

REQUEST_ID_ENV = "idp.request_id"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("idp_request_id", default="")

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def request_id(environ: dict[str, Any]) -> str:
    """The ID of this request (a new one outside :class:`RequestIdMiddleware`)."""
    rid = environ.get(REQUEST_ID_ENV)
    if not isinstance(rid, str):
        rid = environ[REQUEST_ID_ENV] = ids.uuid4()
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


class AccessLog:
    """WSGI middleware: one access-log line per request on a file descriptor (stdout), in the
    format of granian's own access log::

        [2026-11-29 14:20:05 +0000] 127.0.0.1 - "GET /healthz HTTP/1.1" 200 0.412

    (peer address, request line, status, milliseconds until the app returned).  Each line is
    one ``write(2)``: lines of concurrent threads and workers never interleave (a pipe writes
    up to ``PIPE_BUF`` bytes at once) and none waits in a buffer.  granian's logger builds a
    ``logging`` record per request, a quarter of the Python time of a token introspection.
    Characters that are not printable in the path (``%0A`` decodes to a newline) are escaped,
    so a request cannot forge a line."""

    def __init__(self, app: WSGIApp, fd: int = 1) -> None:
        self.app = app
        self.fd = fd
        self._clock = (-1, "")  # (second, its time stamp), replaced whole: threads share it

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started = time.perf_counter()
        addr = environ.get("REMOTE_ADDR", "-")  # the peer's, before ProxyFix rewrites it
        status: list[str] = []

        def recording(code: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status[:] = [code]
            return start_response(code, headers, *exc)

        try:
            body = self.app(environ, recording)
        except BaseException:
            self._write(environ, addr, "500", started)
            raise
        self._write(environ, addr, status[0][:3] if status else "500", started)
        return body

    def _write(self, environ: dict[str, Any], addr: str, code: str, started: float) -> None:
        now = time.time()
        second, stamp = self._clock
        if int(now) != second:  # the time stamp changes once a second
            stamp = dt.datetime.fromtimestamp(now).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
            self._clock = (int(now), stamp)
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if not (path.isprintable() and method.isprintable()):
            path = path.encode("unicode_escape").decode("ascii")
            method = method.encode("unicode_escape").decode("ascii")
        line = (f'[{stamp}] {addr} - "{method} {path} '
                f'{environ.get("SERVER_PROTOCOL", "")}" {code} '
                f"{(time.perf_counter() - started) * 1000:.3f}\n")
        data = line.encode("utf-8", "backslashreplace")
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:  # a closed or full log never fails the request
            pass
