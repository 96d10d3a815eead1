"""Headless SAML responses: what ``/saml/sso`` would answer, without a browser.

The assertion is assembled by :func:`idp.saml.issue.assertion_data` (the NameID, the attribute
map and the AWS role attributes the IAM mapping gives, as for a signed-in person) and signed by
:func:`idp.saml.issue.signed_document` (the IdP's own signing code and key).  Overrides replace
fields of :class:`idp.saml.build.AssertionData` before signing, so an overridden response is
still genuinely signed; failure presets (:mod:`idp.testing.saml_presets`) go further and break
it on purpose.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idp.login.sessions import IdpSession
from idp.saml import attributes as attrs
from idp.saml.build import AssertionData, Attribute
from idp.saml.issue import assertion_data, encrypts, signed_document
from idp.saml.metadata import ServiceProvider
from idp.store import new_id
from idp.testing.errors import KitError

if TYPE_CHECKING:
    from idp.app import Components
    from idp.saml.core import SamlIdp

ROLE_ATTRIBUTE = attrs.AWS + "Role"
RESPONSE_FIELDS = ("destination",)
"""Overrides that apply to the ``<Response>`` rather than to the assertion."""


@dataclass(frozen=True)
class SamlPost:
    """A SAMLResponse ready to POST to an SP's assertion consumer (SAML Bindings §3.5)."""

    url: str
    saml_response: str
    relay_state: str | None
    xml: bytes

    @property
    def data(self) -> dict[str, str]:
        """The form fields (``SAMLResponse``, ``RelayState``) for ``requests.post``."""
        out = {"SAMLResponse": self.saml_response}
        if self.relay_state is not None:
            out["RelayState"] = self.relay_state
        return out


@dataclass(frozen=True)
class Minted:
    """An assertion about to be signed, with what produced it."""

    idp: SamlIdp
    sp: ServiceProvider
    data: AssertionData
    destination: str
    encrypt: bool
    acs: str


def saml_idp(comps: Components) -> SamlIdp:
    idp: SamlIdp = comps.extras["saml"]
    return idp


def person_session(comps: Components, username: str, *, now: float | None = None,
                   mfa: bool = False) -> IdpSession:
    """A session for ``username`` as a login would open it (held in memory, not stored);
    ``mfa``: with an authenticator code at the same instant (``amr`` ``otp``, ``mfa``)."""
    identity = comps.directory.lookup(username)
    if identity is None:
        raise KitError(f"no user `{username}` in the kit's directory")
    t = int(time.time() if now is None else now)
    return IdpSession(id=new_id(32), username=identity.username, subject=identity.subject,
                      groups=list(identity.groups), attributes=dict(identity.attributes),
                      auth_time=t, expires_at=t + comps.config.session.absolute_timeout,
                      last_seen=t, amr=["pwd", "otp", "mfa"] if mfa else ["pwd"],
                      mfa_time=t if mfa else None)


def prepare(comps: Components, sp: str, user: str, *, in_response_to: str | None = None,
            name_id_format: str | None = None, acs_url: str | None = None,
            relay_state: str | None = None, mfa: bool = False, **overrides: Any
            ) -> tuple[Minted, str | None]:
    """The assertion data for ``user`` at ``sp``, with ``overrides`` applied."""
    idp = saml_idp(comps)
    service = idp.sps.get(sp)
    if service is None:
        raise KitError(f"unknown service provider `{sp}`")
    known = {f.name for f in dataclasses.fields(AssertionData)}
    unknown = sorted(set(overrides) - known - set(RESPONSE_FIELDS))
    if unknown:
        raise KitError(f"unknown override `{unknown[0]}` (assertion fields: "
                       f"{', '.join(sorted(known))}; response fields: destination)")
    acs = acs_url or service.default_acs().location
    fmt = attrs.pick_format(name_id_format, service.name_id_formats,
                            idp.options(service).name_id_format)
    pending = {"acs": acs, "request_id": in_response_to, "relay": relay_state}
    now = overrides.get("now")
    sess = person_session(comps, user, now=now if isinstance(now, int | float) else None,
                          mfa=mfa)
    data, _, _ = assertion_data(idp, service, pending, fmt, sess)
    destination = str(overrides.pop("destination", acs))
    data = dataclasses.replace(data, **overrides)
    return Minted(idp, service, data, destination, encrypts(idp, service), acs), relay_state


def sign(m: Minted) -> bytes:
    """The Response as the IdP writes it (signed; encrypted when the SP asks)."""
    return signed_document(m.idp, m.sp, m.data, response_id=m.idp.d.id_gen(),
                           destination=m.destination, encrypt=m.encrypt)


def post(m: Minted, document: bytes, relay_state: str | None) -> SamlPost:
    return SamlPost(m.acs, base64.b64encode(document).decode(), relay_state,
                    document)


def roles_in(data: AssertionData) -> list[tuple[str, str]]:
    """The (role ARN, provider ARN) pairs of the assertion's AWS ``Role`` attribute."""
    out = []
    for a in data.attributes:
        if isinstance(a, Attribute) and a.name == ROLE_ATTRIBUTE:
            for v in a.values:
                role, _, provider = v.partition(",")
                out.append((role, provider))
    return out
