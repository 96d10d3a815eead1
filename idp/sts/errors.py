"""Errors of the STS, with AWS's error codes and HTTP statuses.

Codes and statuses are those of the AWS STS API Reference ("Common Errors" and each action's
"Errors" section).  ``Type`` is ``Sender`` for a client mistake and ``Receiver`` for ours.
"""

from __future__ import annotations

from idp.errors import IdpError


class StsError(IdpError):
    """An AWS STS error: ``code`` is AWS's ``<Code>``, ``description`` its ``<Message>``."""

    code = "InternalFailure"
    status = 500
    description = "the request could not be processed"

    @property
    def fault(self) -> str:
        return "Receiver" if self.status >= 500 else "Sender"


def err(code: str, message: str, status: int = 400, debug: str = "") -> StsError:
    """A :class:`StsError` with an AWS code."""
    return StsError(message, code=code, status=status, debug=debug)


def validation(field: str, value: object, constraint: str) -> StsError:
    """The AWS ``ValidationError`` wording ("1 validation error detected: …")."""
    shown = str(value)
    if len(shown) > 64:
        shown = shown[:64] + "…"
    return err("ValidationError", f"1 validation error detected: Value '{shown}' at '{field}' "
               f"failed to satisfy constraint: {constraint}")


def access_denied(message: str, debug: str = "") -> StsError:
    return err("AccessDenied", message, 403, debug)


def invalid_token(message: str, debug: str = "") -> StsError:
    """``InvalidIdentityToken`` (400): the assertion or token could not be validated."""
    return err("InvalidIdentityToken", message, 400, debug)


def expired_token(message: str = "Token is expired", debug: str = "") -> StsError:
    """``ExpiredTokenException`` (400): the assertion or web identity token has expired."""
    return err("ExpiredTokenException", message, 400, debug)
