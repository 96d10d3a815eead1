"""Verification of SAML assertions for ``AssumeRoleWithSAML`` (STS API Reference,
``AssumeRoleWithSAML``; IAM User Guide, "Configure SAML assertions for the authentication
response"; SAML Core §2.3–2.7 and §5.4; SAML Profiles §4.1.4.2–4.1.4.3).

Defences, in order: base64 and size bounds; no DTD or entity (refused before parsing, and a
parser that resolves nothing); exactly one ``<Assertion>`` in the whole document, a direct child
of the ``<Response>``, no ``<EncryptedAssertion>``; the signature is an enveloped child of the
assertion (or of the response) whose one ``<Reference>`` names that element's ``ID``, which is
unique in the document; no comment or processing instruction inside the signed element; only
RSA/ECDSA-SHA2, SHA-2 digests, enveloped + exclusive C14N transforms
(:mod:`idp.sts.xmldsig`), verified with the certificates of the provider's metadata only.
Every value is then read from the exclusive canonical bytes the digest covered, so wrapped
content is never read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from idp.iam import IamModel, SamlProvider
from idp.keys import KeyRing
from idp.store import Store, key
from idp.store.epoch import StoreEpoch
from idp.sts.errors import StsError, err, expired_token, invalid_token
from idp.sts.xmldsig import PublicKey, verify_enveloped
from idp.xmlsafe import UnsafeXml, parse_untrusted, parser

NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
      "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "md": "urn:oasis:names:tc:SAML:2.0:metadata",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}
SAMLP, SAML, DS, MD = (f"{{{NS[p]}}}" for p in ("samlp", "saml", "ds", "md"))
AWS_ATTR = "https://aws.amazon.com/SAML/Attributes/"
AUDIENCES = ("urn:amazon:webservices", "https://signin.aws.amazon.com/saml")
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
MAX_XML = 100_000


@dataclass(frozen=True)
class SamlClaims:
    """What a verified assertion says (read from the signed bytes only)."""

    assertion_id: str
    issuer: str
    subject: str
    subject_format: str
    audience: str
    recipient: str  # SubjectConfirmationData Recipient: AWS's `saml:aud`
    not_on_or_after: float
    roles: tuple[tuple[str, str], ...]  # (role ARN, provider ARN)
    session_name: str | None
    session_duration: int | None
    principal_tags: dict[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    session_not_on_or_after: float | None = None  # AuthnStatement SessionNotOnOrAfter
    issued_at: float | None = None  # Assertion IssueInstant (SAML Core §2.3.3)
    mfa_at: float | None = None  # AuthnInstant of a REFEDS MFA AuthnStatement

    @property
    def subject_type(self) -> str:
        """``persistent``/``transient`` for the SAML formats, else the full URN (AWS)."""
        for short in ("persistent", "transient"):
            if self.subject_format.endswith(":" + short):
                return short
        return self.subject_format


def parse_safely(data: bytes) -> etree._Element:
    """Parse untrusted XML: DTDs and entity declarations are refused outright."""
    try:
        return parse_untrusted(data, remove_comments=False)
    except UnsafeXml as exc:
        if exc.kind == "dtd":
            raise invalid_token("Invalid SAML response: DTDs are not allowed",
                                exc.debug) from None
        raise invalid_token("Invalid SAML response: not well-formed", exc.debug) from None


_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                       r"(Z|[+-][0-9]{2}:[0-9]{2})")


def _time(value: str | None, what: str) -> float:
    """An ``xs:dateTime`` in UTC (SAML Core §1.3.3): ASCII digits, with its zone (a time
    without one would be read in the server's local time)."""
    if not value:
        raise invalid_token(f"Invalid SAML response: missing {what}")
    if not _DATETIME.fullmatch(value.strip()):
        raise invalid_token(f"Invalid SAML response: bad {what}")
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise invalid_token(f"Invalid SAML response: bad {what}") from None


class CertCache:
    """Signing keys of SAML providers (from their certificates), loaded once."""

    def __init__(self, keys: KeyRing, own_entity_id: str) -> None:
        self.keys = keys
        self.own_entity_id = own_entity_id
        self._lock = threading.Lock()
        self._by_provider: dict[str, tuple[str | None, list[PublicKey]]] = {}

    def for_provider(self, p: SamlProvider) -> tuple[str | None, list[PublicKey]]:
        """(entity ID, keys); a provider without metadata is this IdP (DESIGN.md demo)."""
        hit = self._by_provider.get(p.arn)
        if hit is not None:
            return hit
        if p.metadata_xml is None and p.metadata_file is None:
            pems = [k.cert_pem.encode() for k in self.keys.published()
                    if k.alg == "RS256"]
            entity: str | None = self.own_entity_id
        else:
            xml = p.metadata_xml.encode() if p.metadata_xml else Path(
                p.metadata_file or "").read_bytes()
            entity, pems = _metadata_certs(xml)
        loaded: list[PublicKey] = []
        for pem in pems:
            key = x509.load_pem_x509_certificate(pem).public_key()
            if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                loaded.append(key)
        with self._lock:
            self._by_provider[p.arn] = (entity, loaded)
        return entity, loaded


def _metadata_certs(xml: bytes) -> tuple[str | None, list[bytes]]:
    root = parse_safely(xml)
    entity = root.get("entityID")
    pems = []
    for kd in root.iterfind(".//md:IDPSSODescriptor/md:KeyDescriptor", NS):
        if kd.get("use") not in (None, "signing"):
            continue
        for c in kd.iterfind(".//ds:X509Certificate", NS):
            der = base64.b64decode("".join((c.text or "").split()))
            b64 = base64.encodebytes(der).decode()
            pems.append(f"-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n"
                        .encode())
    return entity, pems


def _signed_element(root: etree._Element, assertion: etree._Element) -> etree._Element:
    for el in (assertion, root):
        sigs = el.findall(DS + "Signature")
        if len(sigs) > 1:
            raise invalid_token("Invalid SAML response: more than one signature")
        if sigs:
            return el
    raise invalid_token("Invalid SAML response: the assertion is not signed")


def _check_ids(signed: etree._Element, root: etree._Element) -> None:
    """The signed element's ``ID`` must be unique in the document (signature wrapping)."""
    ident = signed.get("ID")
    same = [e for e in root.iter(etree.Element)
            if ident in (e.get("ID"), e.get("Id"), e.get("id"))]
    if not ident or len(same) != 1:
        raise invalid_token("Invalid SAML response: duplicate ID", "signature wrapping")


def _text(el: etree._Element | None) -> str:
    return "" if el is None else "".join(el.itertext()).strip()


class SamlVerifier:
    """Verify ``SAMLAssertion`` for a ``PrincipalArn``; remember assertion IDs (one-time)."""

    def __init__(self, model: IamModel, certs: CertCache, store: Store,
                 clock: Callable[[], float], recipients: tuple[str, ...],
                 skew: int = 120) -> None:
        self.model, self.certs, self.store, self.clock = model, certs, store, clock
        self.recipients, self.skew = recipients, skew
        self.epoch = StoreEpoch(store, clock)

    def verify(self, saml_b64: str, principal_arn: str) -> SamlClaims:
        provider = self.model.saml_providers.get(principal_arn)
        if provider is None:
            raise invalid_token("Specified provider doesn't exist")
        try:
            data = base64.b64decode("".join(saml_b64.split()), validate=True)
        except (binascii.Error, ValueError):
            raise invalid_token("Invalid base64 SAMLResponse") from None
        if len(data) > MAX_XML:
            raise invalid_token("Invalid SAML response: too large")
        root = parse_safely(data)
        if root.tag != SAMLP + "Response":
            raise invalid_token("Invalid SAML response: not a samlp:Response")
        status = root.find("samlp:Status/samlp:StatusCode", NS)
        if status is None or status.get("Value") != SUCCESS:
            raise err("IDPRejectedClaim", "The identity provider reported that authentication "
                      "failed", 403)
        found = list(root.iter(SAML + "Assertion"))
        if root.find(f".//{SAML}EncryptedAssertion") is not None or len(found) != 1:
            raise invalid_token("Invalid SAML response: exactly one assertion is required",
                                f"{len(found)} assertions")
        assertion = found[0]
        if assertion.getparent() is not root:
            raise invalid_token("Invalid SAML response: misplaced assertion")
        entity, keys = self.certs.for_provider(provider)
        signed = _signed_element(root, assertion)
        _check_ids(signed, root)
        if next(signed.iter(etree.Comment, etree.ProcessingInstruction), None) is not None:
            raise invalid_token("Invalid SAML response: comments are not allowed",
                                "comment or processing instruction in the signed element")
        clean = etree.fromstring(verify_enveloped(signed, keys), parser(remove_comments=True))
        if clean.tag == SAMLP + "Response":
            inner = clean.findall(SAML + "Assertion")
            if len(inner) != 1:
                raise invalid_token("Invalid SAML response: exactly one assertion is required")
            clean = inner[0]
        return self._claims(clean, entity)

    def _claims(self, a: etree._Element, entity: str | None) -> SamlClaims:
        now = self.clock()
        issuer = _text(a.find(SAML + "Issuer"))
        if entity is not None and issuer != entity:
            raise invalid_token("Invalid SAML response: issuer does not match the provider")
        cond = a.find(SAML + "Conditions")
        if cond is None:
            raise invalid_token("Invalid SAML response: missing Conditions")
        if cond.get("NotBefore") and _time(cond.get("NotBefore"), "NotBefore") > now + self.skew:
            raise invalid_token("Assertion is not yet valid")
        not_after = _time(cond.get("NotOnOrAfter"), "NotOnOrAfter")
        if not_after <= now - self.skew:
            raise expired_token("Assertion has expired")
        audiences = [_text(x) for x in cond.iterfind("saml:AudienceRestriction/saml:Audience",
                                                     NS)]
        audience = next((x for x in audiences if x in AUDIENCES), None)
        if audience is None:
            raise invalid_token("Invalid SAML response: audience is not this service")
        name_id = a.find("saml:Subject/saml:NameID", NS)
        if name_id is None or not _text(name_id):
            raise invalid_token("Invalid SAML response: missing NameID")
        recipient = self._confirm(a, now)
        attrs: dict[str, list[str]] = {}
        for at in a.iterfind("saml:AttributeStatement/saml:Attribute", NS):
            attrs.setdefault(at.get("Name", ""), []).extend(
                _text(v) for v in at.iterfind("saml:AttributeValue", NS))
        return SamlClaims(
            assertion_id=a.get("ID", ""), issuer=issuer, subject=_text(name_id),
            subject_format=name_id.get("Format",
                                       "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"),
            audience=audience, recipient=recipient, not_on_or_after=not_after,
            roles=tuple(_role_pair(v) for v in attrs.get(AWS_ATTR + "Role", [])),
            session_name=_first(attrs.get(AWS_ATTR + "RoleSessionName")),
            session_duration=_duration(attrs.get(AWS_ATTR + "SessionDuration")),
            principal_tags={k[len(AWS_ATTR + "PrincipalTag:"):]: v[0] for k, v in attrs.items()
                            if k.startswith(AWS_ATTR + "PrincipalTag:") and v},
            transitive_tag_keys=tuple(attrs.get(AWS_ATTR + "TransitiveTagKeys", [])),
            source_identity=_first(attrs.get(AWS_ATTR + "SourceIdentity")),
            attributes=attrs, session_not_on_or_after=_session_end(a),
            issued_at=_time(a.get("IssueInstant"), "IssueInstant"), mfa_at=_mfa_at(a))

    def _confirm(self, a: etree._Element, now: float) -> str:
        """SAML Profiles §4.1.4.2: a bearer confirmation for our consumer, still valid."""
        for sc in a.iterfind("saml:Subject/saml:SubjectConfirmation", NS):
            if sc.get("Method") != BEARER:
                continue
            data = sc.find(SAML + "SubjectConfirmationData")
            if data is None:
                continue
            if data.get("Recipient") not in self.recipients:
                raise invalid_token("Invalid SAML response: recipient is not this service")
            if _time(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter") \
                    <= now - self.skew:
                raise expired_token("Assertion has expired")
            return str(data.get("Recipient"))
        raise invalid_token("Invalid SAML response: no bearer SubjectConfirmation")

    def mark_used(self, claims: SamlClaims) -> None:
        """Remember the assertion until it expires; a second use is refused, and so is an
        assertion issued before the store's epoch (:mod:`idp.store.epoch`): the store lost
        the markers that would tell whether it was used."""
        digest = hashlib.sha256(f"{claims.issuer}\x00{claims.assertion_id}".encode()).hexdigest()
        ttl = max(1, int(claims.not_on_or_after - self.clock()) + self.skew)
        claimed, start = self.epoch.claim(key("replay", "sts-saml:" + digest), ttl)
        if not claimed:
            raise invalid_token("Assertion has already been used", "replay")
        if claims.issued_at is None or self.epoch.issued_before(claims.issued_at, start):
            raise expired_token("Assertion was issued before the service lost its replay "
                                "records; get a new one",
                                f"issued before the store epoch ({claims.issued_at})")


def _role_pair(value: str) -> tuple[str, str]:
    """``role-arn,provider-arn`` in either order (IAM User Guide, ``Role`` attribute)."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        return ("", "")
    a, b = parts
    if ":role/" in b and ":saml-provider/" in a:
        return (b, a)
    return (a, b)


def _session_end(a: etree._Element) -> float | None:
    """The earliest ``SessionNotOnOrAfter`` of the authentication statements (SAML Core
    §2.7.2): AWS ends the role session there at the latest."""
    ends = [_time(st.get("SessionNotOnOrAfter"), "SessionNotOnOrAfter")
            for st in a.iterfind("saml:AuthnStatement", NS) if st.get("SessionNotOnOrAfter")]
    return min(ends) if ends else None


REFEDS_MFA = "https://refeds.org/profile/mfa"


def _mfa_at(a: etree._Element) -> float | None:
    """The ``AuthnInstant`` of an authentication statement whose context is the REFEDS MFA
    profile (a second factor was used), or ``None``."""
    for st in a.iterfind("saml:AuthnStatement", NS):
        refs = [_text(r) for r in st.iterfind("saml:AuthnContext/saml:AuthnContextClassRef", NS)]
        if REFEDS_MFA in refs and st.get("AuthnInstant"):
            return _time(st.get("AuthnInstant"), "AuthnInstant")
    return None


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _duration(values: list[str] | None) -> int | None:
    if not values:
        return None
    v = values[0]
    if not re.fullmatch(r"[0-9]{3,5}", v) or not 900 <= int(v) <= 43200:
        raise invalid_token("Invalid SAML response: SessionDuration must be 900-43200 seconds")
    return int(v)


__all__ = ["CertCache", "SamlClaims", "SamlVerifier", "StsError", "parse_safely"]
