"""The client's one error: a refusal or failure a command reports on stderr."""

from __future__ import annotations


class ClientError(Exception):
    """Reported as ``idp <command>: <message>`` with exit status ``status`` (never a
    traceback); ``code`` is the protocol's error code when there is one."""

    def __init__(self, message: str, code: str = "", status: int = 1) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status
