"""Second factors: TOTP, recovery codes, their enrolments, lockouts and the MFA policy.

``crypto`` encrypts factor secrets at rest (AES-256-GCM, rotatable keys); ``model`` is what a
person has enrolled; ``storage`` keeps enrolments durably (a folder of files, see its doc for
why not Redis); ``totp`` is RFC 6238; ``recovery`` the single-use codes; ``limits`` the wrong-
code counters; ``policy`` who must use a second factor; ``service`` ties them together with
the store (one-time markers) and audit events.  No Flask here.
"""

from idp.mfa.model import Enrolment, Factor
from idp.mfa.service import MfaError, MfaService, Verified

__all__ = ["Enrolment", "Factor", "MfaError", "MfaService", "Verified"]
