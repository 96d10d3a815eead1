"""What comes after the password: the second step of sign-in (see ``LoginService``).

A person is asked for a second factor at sign-in when they have one and ``mfa.sign_in`` is
``enrolled`` (the default, as Keycloak asks whoever configured OTP), or when a group of theirs
requires MFA (``mfa.require.groups``).  A person a group requires it of who has no factor is
refused, or, with ``mfa.grace``, signed in and sent to enrol one.
"""

from __future__ import annotations

from idp.audit import RequestInfo
from idp.directory import Identity
from idp.mfa.policy import MfaPolicy
from idp.mfa.service import MfaError, MfaService


class SecondStepGate:
    def __init__(self, service: MfaService, policy: MfaPolicy) -> None:
        self.service = service
        self.policy = policy

    def __call__(self, identity: Identity, request: RequestInfo) -> str | None:
        methods = self.service.methods(self.service.enrolment(identity.username))
        required = self.policy.for_groups(identity.groups)
        if methods and (required or self.service.config.sign_in == "enrolled"):
            return "mfa"
        if not required:
            return None
        if self.service.config.grace:
            return "enrol"
        self.service.auditor.emit("Login", request, user=identity.username,
                                  event_type="AwsConsoleSignIn", error_code="MfaNotEnrolled",
                                  error_message="Failed authentication")
        raise MfaError("a second factor is required and none is set up: ask your "
                       "administrator", code="mfa_required", status=403)
