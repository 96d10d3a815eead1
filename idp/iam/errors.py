"""Errors of the IAM core, with the AWS error codes.

``MalformedPolicyDocument`` carries AWS's own wording (see the ``MalformedPolicyDocument``
error of the IAM API Reference, e.g. ``CreatePolicy`` / ``PutRolePolicy``) as its description,
plus a ``pointer`` (``Statement[1].Effect``) that says where in the document the problem is.
"""

from __future__ import annotations

from idp.errors import IdpError


class IamError(IdpError):
    """An IAM API error (IAM API Reference, "Common Errors")."""

    code = "ValidationError"
    status = 400


class MalformedPolicyDocument(IamError):
    """The policy document is not valid policy language (IAM API ``MalformedPolicyDocument``)."""

    code = "MalformedPolicyDocument"
    status = 400

    def __init__(self, description: str, pointer: str = "") -> None:
        self.pointer = pointer
        super().__init__(description, debug=f"at {pointer}" if pointer else "")

    def located(self) -> str:
        """The message prefixed with where the problem is (for humans, e.g. the CLI)."""
        return f"{self.pointer}: {self.description}" if self.pointer else self.description


class NoSuchEntity(IamError):
    """The named role, policy or provider does not exist (IAM API ``NoSuchEntity``)."""

    code = "NoSuchEntity"
    status = 404
