"""Serving a WSGI app of the kit (the IdP, a mock SP, RP or S3) on a loopback port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from werkzeug.serving import WSGIRequestHandler, make_server

WsgiApp = Callable[..., Iterable[bytes]]


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (a test suite makes thousands)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve(app: WsgiApp, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` in a daemon thread until the block ends; yields its base URL (port 0:
    the kernel picks a free one)."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
