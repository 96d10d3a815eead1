"""Second factors: passkeys, TOTP, codes by email and text, recovery codes, their enrolments,
lockouts and the MFA policy.

``crypto`` encrypts factor secrets at rest (AES-256-GCM, rotatable keys); ``model`` is what a
person has enrolled; ``storage`` keeps enrolments durably (a folder of files, see its doc for
why not Redis); ``totp`` is RFC 6238; ``passkeys`` WebAuthn; ``codes`` and ``senders`` the
codes sent by email (SMTP) or text message (SNS, webhook); ``recovery`` the single-use codes;
``limits`` the wrong-code counters; ``policy`` who must use a second factor; ``gate`` the
second step of sign-in; ``devices`` the virtual MFA devices of the STS; ``service`` ties them
together with the store (one-time markers) and audit events; ``cli`` is ``idp users mfa``.
No Flask here.
"""

from idp.mfa.model import Enrolment, Factor
from idp.mfa.service import MfaError, MfaService, Verified

__all__ = ["Enrolment", "Factor", "MfaError", "MfaService", "Verified"]
