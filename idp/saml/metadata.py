"""Service provider metadata in, IdP metadata out (SAML Metadata 2.0).

Each SP file is validated on its own at start: a file that does not parse, names no SP, has an
assertion consumer we cannot use or a certificate that does not parse is reported with its name
and skipped, never half-loaded.  The built-in AWS-style SP is registered from the issuer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from idp.errors import IdpError
from idp.saml.crypto import cert_pem
from idp.saml.xml import MD, NS, bool_attr, parse_xml

PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
NAMEID = "urn:oasis:names:tc:SAML:2.0:nameid-format:"
PERSISTENT = NAMEID + "persistent"
TRANSIENT = NAMEID + "transient"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_FORMATS = (PERSISTENT, TRANSIENT, EMAIL, UNSPECIFIED)
AWS_ENTITY_ID = "urn:amazon:webservices"
AWS_CONSOLE_ENTITY_ID = "https://signin.aws.amazon.com/saml"
MAX_METADATA_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    binding: str
    location: str
    index: int = 0
    is_default: bool = False
    response_location: str | None = None


@dataclass(frozen=True)
class ServiceProvider:
    """What the metadata says about one SP (SAML Metadata §2.4.4 ``SPSSODescriptor``)."""

    entity_id: str
    acs: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...] = ()
    signing_certs: tuple[str, ...] = ()
    encryption_certs: tuple[str, ...] = ()
    authn_requests_signed: bool = False
    want_assertions_signed: bool = True
    name_id_formats: tuple[str, ...] = ()
    source: str = "built-in"
    display_name: str | None = None  # for people: "Sign in to continue to …"

    def default_acs(self) -> Endpoint:
        """The default endpoint (SAML Metadata §2.2.3): ``isDefault``, else the first."""
        for e in self.acs:
            if e.is_default:
                return e
        return self.acs[0]

    def slo_endpoint(self) -> Endpoint | None:
        """Where to send logout messages: HTTP-Redirect preferred, else HTTP-POST."""
        for binding in (REDIRECT, POST):
            for e in self.slo:
                if e.binding == binding:
                    return e
        return None


@dataclass
class LoadedMetadata:
    sps: dict[str, ServiceProvider] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # a built-in SP replaced by a file


def _url(value: str | None) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"`{value}` is not an http(s) URL")
    return value or ""


def _certs(sp: etree._Element, use: str) -> list[str]:
    out = []
    for kd in sp.findall("md:KeyDescriptor", NS):
        if kd.get("use") not in (None, use):
            continue
        if use == "encryption" and kd.get("use") is None:
            continue  # only an explicit encryption key means "encrypt for me"
        for c in kd.findall(".//ds:X509Certificate", NS):
            try:
                out.append(cert_pem(c.text or ""))
            except ValueError as exc:
                raise ValueError(f"a {use} certificate does not parse ({exc})") from exc
    return out


MDUI = "urn:oasis:names:tc:SAML:metadata:ui"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _display_name(entity: etree._Element, sp: etree._Element) -> str | None:
    """The name people know the SP by: ``mdui:DisplayName`` (SAML Metadata UI §2.1.2,
    English preferred), else ``md:OrganizationDisplayName`` (SAML Metadata §2.3.2.1)."""
    names = sp.findall(f"md:Extensions/{{{MDUI}}}UIInfo/{{{MDUI}}}DisplayName", NS) or \
        entity.findall("md:Organization/md:OrganizationDisplayName", NS)
    texts = [(n.get(_XML_LANG) or "", " ".join((n.text or "").split())) for n in names]
    texts = [(lang, text) for lang, text in texts if text]
    if not texts:
        return None
    english = [text for lang, text in texts if lang.lower().startswith("en")]
    return (english or [texts[0][1]])[0][:200]


def parse_sp(entity: etree._Element, source: str) -> ServiceProvider:
    """One ``<md:EntityDescriptor>`` with an SPSSODescriptor; ValueError says what is wrong."""
    entity_id = (entity.get("entityID") or "").strip()
    if not entity_id or len(entity_id) > 1024:
        raise ValueError("no entityID")
    sp = entity.find("md:SPSSODescriptor", NS)
    if sp is None or PROTOCOL not in (sp.get("protocolSupportEnumeration") or "").split():
        raise ValueError(f"`{entity_id}` has no SAML 2.0 SPSSODescriptor")
    acs = []
    for e in sp.findall("md:AssertionConsumerService", NS):
        if e.get("Binding") != POST:
            continue  # Web SSO responses travel by HTTP-POST only (SAML Profiles §4.1.2)
        acs.append(Endpoint(POST, _url(e.get("Location")), int(e.get("index") or 0),
                            bool_attr(e, "isDefault")))
    if not acs:
        raise ValueError(f"`{entity_id}` has no HTTP-POST AssertionConsumerService")
    slo = [Endpoint(e.get("Binding") or "", _url(e.get("Location")), 0, False,
                    _url(e.get("ResponseLocation")) if e.get("ResponseLocation") else None)
           for e in sp.findall("md:SingleLogoutService", NS)
           if e.get("Binding") in (POST, REDIRECT)]
    formats = tuple((e.text or "").strip() for e in sp.findall("md:NameIDFormat", NS))
    return ServiceProvider(
        entity_id=entity_id, acs=tuple(acs), slo=tuple(slo),
        signing_certs=tuple(_certs(sp, "signing")),
        encryption_certs=tuple(_certs(sp, "encryption")),
        authn_requests_signed=bool_attr(sp, "AuthnRequestsSigned"),
        want_assertions_signed=bool_attr(sp, "WantAssertionsSigned"),
        name_id_formats=formats, source=source, display_name=_display_name(entity, sp))


def parse_metadata_file(path: Path) -> list[ServiceProvider]:
    """Every SP of one file (an EntityDescriptor or EntitiesDescriptor), or ValueError."""
    try:
        root = parse_xml(path.read_bytes(), MAX_METADATA_BYTES)
    except (OSError, IdpError) as exc:
        raise ValueError(getattr(exc, "description", None) or str(exc)) from exc
    if root.tag == MD + "EntityDescriptor":
        entities = [root]
    elif root.tag == MD + "EntitiesDescriptor":
        entities = root.findall(".//md:EntityDescriptor", NS)
    else:
        raise ValueError("not SAML metadata (no md:EntityDescriptor)")
    sps = [parse_sp(e, path.name) for e in entities if e.find("md:SPSSODescriptor", NS)
           is not None]
    if not sps:
        raise ValueError("no service provider in the file")
    return sps


def load_metadata(dirs: Iterable[Path], builtin: Sequence[ServiceProvider] = ()
                  ) -> LoadedMetadata:
    """Load ``*.xml`` of each folder (missing folders are fine); problems are collected.

    A file may replace a built-in SP (AWS's own metadata, entity ID ``urn:amazon:webservices``
    and consumer ``https://signin.aws.amazon.com/saml``, replaces the built-in AWS-style SP
    whose consumer is the federation page): said in ``notices``.  Two files naming one entity
    are a problem: the second is skipped."""
    out = LoadedMetadata({sp.entity_id: sp for sp in builtin})
    replaceable = {sp.entity_id for sp in builtin}
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.xml")):
            try:
                sps = parse_metadata_file(path)
            except ValueError as exc:
                out.problems.append(f"{path.name}: {exc}")
                continue
            dupes = [sp.entity_id for sp in sps
                     if sp.entity_id in out.sps and sp.entity_id not in replaceable]
            if dupes:
                out.problems.append(f"{path.name}: entity `{dupes[0]}` is already loaded")
                continue
            for sp in sps:
                if sp.entity_id in replaceable:
                    replaceable.discard(sp.entity_id)
                    out.notices.append(
                        f"{path.name}: `{sp.entity_id}` replaces the built-in service provider "
                        f"(assertions for it now go to {sp.default_acs().location})")
            out.sps.update({sp.entity_id: sp for sp in sps})
    return out


def aws_sp(issuer: str) -> ServiceProvider:
    """The built-in AWS-style SP (DESIGN.md): its consumer is ``<issuer>/federation/saml``."""
    return ServiceProvider(AWS_ENTITY_ID, (Endpoint(POST, issuer.rstrip("/") +
                                                    "/federation/saml", 0, True),),
                           name_id_formats=(PERSISTENT, TRANSIENT),
                           display_name="AWS temporary credentials")
