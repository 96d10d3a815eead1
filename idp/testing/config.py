"""The test kit's configuration: the YAML config's own models, plus people and SPs in Python.

:class:`KitConfig` holds what a test states (users, SAML service providers, OIDC clients, the
IAM section, protocol settings); :func:`materialise` writes the users file and the SP metadata
into a folder and returns the :class:`idp.config.Config` an IdP process would load, validated by
:func:`idp.config.parse_config` and :func:`idp.directory.file.parse_users` exactly as the YAML
config and the users file are: every problem is reported at once as a
:class:`idp.errors.ConfigError`.

A user without a password gets ``<username>-password`` (the demo's convention).  Passwords are
hashed with argon2id at the smallest cost argon2 allows (:data:`KIT_HASHER`): these users exist
for tests, and a test suite signs in thousands of times.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from lxml import etree
from pydantic import Field, ValidationError, model_validator

from idp.config import (
    Config,
    IamConfig,
    MfaConfig,
    OidcClientConfig,
    OidcConfig,
    SamlConfig,
    SamlSpOptions,
    Section,
    StsConfig,
    parse_config,
)
from idp.demo import USERS_FILE
from idp.directory.file import opaque, parse_users
from idp.errors import ConfigError
from idp.saml.metadata import NAMEID_FORMATS, PERSISTENT, POST, REDIRECT, parse_metadata_file

KIT_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""argon2id at m=1 MiB, t=1: for test users only, never for a real users file."""

DEMO_PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


class User(Section):
    """A person of the kit's file directory (the users file's fields, plus a plain password)."""

    username: str = Field(..., min_length=1, max_length=256)
    password: str | None = Field(None, description="default: `<username>-password`")
    id: str | None = Field(None, description="the stable subject; default: a UUID from the name")
    groups: list[str] = []
    email: str | None = None
    name: str | None = None
    disabled: bool = False
    totp_secret: str | None = Field(
        None, pattern=r"^[A-Z2-7]{16,128}$",
        description="base32: an authenticator enrolled through the MFA enrolment store")

    @property
    def secret(self) -> str:
        return self.password or f"{self.username}-password"

    @property
    def subject(self) -> str:
        return self.id or str(uuid.uuid5(uuid.NAMESPACE_URL, "idp-testing:" + self.username))


class SamlSp(Section):
    """A SAML service provider: its metadata (a file or text), or an entity ID, an ACS URL and
    its certificates, from which the kit writes the metadata (SAML Metadata §2.4.4)."""

    entity_id: str | None = None
    acs_url: str | None = None
    slo_url: str | None = None
    certificate: str | None = Field(None, description="PEM: the SP's signing certificate")
    encryption_certificate: str | None = Field(None, description="PEM: encrypt assertions")
    authn_requests_signed: bool = False
    name_id_formats: list[str] = [PERSISTENT]
    metadata_file: Path | None = None
    metadata_xml: str | None = None
    options: SamlSpOptions = SamlSpOptions()

    @model_validator(mode="after")
    def _source(self) -> SamlSp:
        given = [self.metadata_file is not None, self.metadata_xml is not None,
                 self.entity_id is not None or self.acs_url is not None]
        if sum(given) != 1:
            raise ValueError("give `metadata_file`, `metadata_xml`, or `entity_id` and `acs_url`")
        if given[2] and not (self.entity_id and self.acs_url):
            raise ValueError("`entity_id` and `acs_url` go together")
        for f in self.name_id_formats:
            if f not in NAMEID_FORMATS:
                raise ValueError(f"unsupported NameID format `{f}`")
        return self


class KitConfig(Section):
    """What one kit IdP knows.  ``users`` ``None`` means the demo's people (alice, bob, carol,
    and dave with the demo's authenticator); ``demo`` adds the demo IAM fixtures (when ``iam``
    is empty) and the demo OIDC clients.  ``mfa`` is the YAML config's ``mfa:`` section; its
    enrolments folder defaults to one of the server's own."""

    users: list[User] | None = None
    saml_sps: list[SamlSp] = []
    oidc_clients: list[OidcClientConfig] = []
    iam: IamConfig = IamConfig()
    saml: SamlConfig = SamlConfig()
    oidc: OidcConfig = OidcConfig()
    sts: StsConfig = StsConfig()
    mfa: MfaConfig = MfaConfig()
    demo: bool = True


def kit_config(data: KitConfig | Mapping[str, Any] | None = None, **fields: Any) -> KitConfig:
    """Validate a kit config (a model, a mapping, keyword fields, or both); every problem at
    once, as :class:`ConfigError`."""
    if isinstance(data, KitConfig):
        if not fields:
            return data
        data = data.model_dump(exclude_unset=True)
    merged = {**(data or {}), **fields}
    try:
        return KitConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError([f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                           for e in exc.errors()]) from exc


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@dataclass(frozen=True)
class Materialised:
    """The files written for one kit IdP and the config that names them."""

    config: Config
    users_file: Path
    passwords: dict[str, str]


def materialise(kit: KitConfig, folder: Path, *, issuer: str, store_url: str,
                keys_dir: Path, cookie_name: str = "idp_session") -> Materialised:
    """Write the users file and the metadata into ``folder``; validate the whole config."""
    folder.mkdir(parents=True, exist_ok=True)
    users_file, passwords = _write_users(kit, folder / "users.yaml")
    metadata_dir = folder / "metadata"
    metadata_dir.mkdir(exist_ok=True)
    options = dict(kit.saml.service_providers)
    problems: list[str] = []
    for i, sp in enumerate(kit.saml_sps):
        try:
            for entity in _write_metadata(sp, metadata_dir / f"sp-{i}.xml"):
                options.setdefault(entity, sp.options)
        except ValueError as exc:
            problems.append(f"saml_sps[{i}]: {exc}")
    if problems:
        raise ConfigError(problems)
    oidc = kit.oidc.model_dump(mode="json")
    oidc["clients"] = [*oidc["clients"], *[c.model_dump(mode="json") for c in kit.oidc_clients]]
    saml = kit.saml.model_dump(mode="json")
    saml["service_providers"] = {k: v.model_dump(mode="json") for k, v in options.items()}
    data = {
        "issuer": issuer,
        "secret_key": secrets.token_urlsafe(32),
        "store": {"url": store_url},
        "directory": {"type": "file", "file": {"path": str(users_file)}},
        "keys": {"dir": str(keys_dir), "generate": True},
        "audit": {"sink": "none"},
        "session": {"cookie_name": cookie_name},
        "metadata_dirs": [str(metadata_dir)],
        "iam": kit.iam.model_dump(mode="json", exclude_unset=True),
        "saml": saml,
        "oidc": oidc,
        "sts": kit.sts.model_dump(mode="json"),
        "mfa": {**kit.mfa.model_dump(mode="json", exclude_unset=True),
                "enrolments_dir": str(kit.mfa.enrolments_dir or folder / "mfa")},
    }
    return Materialised(parse_config(data, env={}), users_file, passwords)


def _write_users(kit: KitConfig, path: Path) -> tuple[Path, dict[str, str]]:
    """The users file, validated as ``idp users`` files are; the demo file when none given."""
    if kit.users is None:
        return USERS_FILE, dict(DEMO_PASSWORDS)
    raw = []
    for u in kit.users:
        entry: dict[str, Any] = {"username": u.username, "id": u.subject,
                                 "password_hash": KIT_HASHER.hash(opaque(u.secret)),
                                 "groups": list(u.groups), "disabled": u.disabled}
        entry.update({k: v for k, v in (("email", u.email), ("name", u.name)) if v})
        raw.append(entry)
    data = {"users": raw}
    parse_users(data, "users")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path, {u.username: u.secret for u in kit.users}


def _write_metadata(sp: SamlSp, path: Path) -> list[str]:
    """The SP's metadata file; the entity IDs it names (checked by the real loader)."""
    if sp.metadata_file is not None:
        try:
            path.write_bytes(Path(sp.metadata_file).read_bytes())
        except OSError as exc:
            raise ValueError(f"cannot read `{sp.metadata_file}` ({exc.strerror})") from exc
    elif sp.metadata_xml is not None:
        path.write_text(sp.metadata_xml, encoding="utf-8")
    else:
        path.write_bytes(sp_metadata(sp))
    return [s.entity_id for s in parse_metadata_file(path)]


def sp_metadata(sp: SamlSp) -> bytes:
    """An ``EntityDescriptor`` with one ``SPSSODescriptor`` (SAML Metadata §2.3.2, §2.4.4)."""
    assert sp.entity_id and sp.acs_url
    md = f"{{{MD_NS}}}"
    root = etree.Element(md + "EntityDescriptor", {"entityID": sp.entity_id},
                         nsmap={"md": MD_NS, "ds": DS_NS})
    desc = etree.SubElement(root, md + "SPSSODescriptor", {
        "protocolSupportEnumeration": "urn:oasis:names:tc:SAML:2.0:protocol",
        "AuthnRequestsSigned": "true" if sp.authn_requests_signed else "false",
        "WantAssertionsSigned": "true"})
    for use, pem in (("signing", sp.certificate), ("encryption", sp.encryption_certificate)):
        if pem:
            kd = etree.SubElement(desc, md + "KeyDescriptor", {"use": use})
            x509 = etree.SubElement(etree.SubElement(kd, f"{{{DS_NS}}}KeyInfo"),
                                    f"{{{DS_NS}}}X509Data")
            etree.SubElement(x509, f"{{{DS_NS}}}X509Certificate").text = "".join(
                line for line in pem.strip().splitlines() if "-----" not in line)
    if sp.slo_url:
        for binding in (REDIRECT, POST):
            etree.SubElement(desc, md + "SingleLogoutService",
                             {"Binding": binding, "Location": sp.slo_url})
    for f in sp.name_id_formats:
        etree.SubElement(desc, md + "NameIDFormat").text = f
    etree.SubElement(desc, md + "AssertionConsumerService",
                     {"Binding": POST, "Location": sp.acs_url, "index": "0",
                      "isDefault": "true"})
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
