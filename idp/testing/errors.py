"""The test kit's one error: a helper was asked for something the kit IdP cannot give."""

from __future__ import annotations


class KitError(Exception):
    """A test kit call refused (unknown user, SP, client or role; a refused protocol step)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
