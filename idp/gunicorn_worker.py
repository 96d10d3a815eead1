"""The gunicorn worker of `idp serve`: gunicorn's gthread worker that drains when it stops.

On SIGTERM a worker stops accepting, answers what it has already received and exits.  Two
things in gunicorn's own gthread worker break that, and are changed here:

- A connection it closes after a response is closed gracefully (RFC 9112 §9.6: half-close,
  then read what the client still sends, up to 2 s) on the worker's one event-loop thread.
  While one client keeps its end open, no other connection is served: requests that arrive on
  kept-alive connections right after SIGTERM waited 2 s, then the stopping worker reset them.
  Here the graceful close runs on the request's own thread.
- A stopping worker answers every request with ``Connection: close``, and drops requests the
  client had already pipelined behind it (RFC 9112 §9.3.2).  Here a request that has another
  one queued behind it keeps the connection open, so that the queued request is answered too;
  the last one carries ``Connection: close``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class DrainingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with a non-blocking graceful close and pipelined requests answered on stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._current = threading.local()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: WSGIApp = self.wsgi  # type: ignore[has-type]
        self.wsgi = self._keep_pipelined(app)

    def handle(self, conn: Any) -> Any:
        self._current.conn = conn
        try:
            result = super().handle(conn)
        finally:
            self._current.conn = None
        if result is False:
            # closed here, on this request's thread, not on the event loop (see above)
            util.close_graceful(conn.sock)
            conn.idp_closed = True
        return result

    def finish_request(self, conn: Any, fs: Any) -> None:
        if getattr(conn, "idp_closed", False):
            self.nr_conns -= 1
            return
        super().finish_request(conn, fs)

    def _keep_pipelined(self, app: WSGIApp) -> WSGIApp:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            response = getattr(start_response, "__self__", None)
            conn = getattr(self._current, "conn", None)
            if (not self.alive and response is not None and conn is not None
                    and _request_queued_behind(conn, environ)):
                response.must_close = False
            return app(environ, start_response)

        return wsgi


def _request_queued_behind(conn: Any, environ: dict[str, Any]) -> bool:
    """Whether the client has already sent bytes beyond this request's body: a pipelined
    request (RFC 9112 §9.3.2).  A chunked body is not measured: the answer is then no."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return False
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    buffered = len(conn.parser.unreader.buf.getvalue())
    if buffered > length:
        return True
    if buffered < length:
        return False
    try:
        return bool(conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, ValueError):  # nothing yet, or a TLS socket (no peeking below TLS)
        return False
