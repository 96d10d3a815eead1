"""Typed configuration: one YAML file, validated once at start, every problem reported at once.

Values of the form ``${NAME}`` are read from the environment (so secrets need not live in the
file); a missing variable is a problem like any other.  Each component receives only its own
section (``config.store``, ``config.directory``…).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from idp.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Section(BaseModel):
    """A config section: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Section):
    url: str = Field("memory://", description="memory:// or a redis[s][+sentinel|+cluster]:// URL")
    socket_timeout: float = Field(2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _scheme(self) -> StoreConfig:
        scheme = self.url.split("://", 1)[0].lower() if "://" in self.url else ""
        allowed = {"memory", "redis", "rediss", "redis+sentinel", "rediss+sentinel",
                   "redis+cluster", "rediss+cluster", "unix"}
        if scheme not in allowed:
            raise ValueError(f"unsupported store URL scheme `{scheme or self.url}`")
        return self


class FileDirectoryConfig(Section):
    path: Path


class LdapAttributeMap(Section):
    username: str = "uid"
    subject: str = "entryUUID"
    email: str = "mail"
    name: str = "cn"
    member_of: str = "memberOf"


class LdapGroupSearch(Section):
    base_dn: str
    filter: str = "(|(member={dn})(uniqueMember={dn}))"
    name_attribute: str = "cn"


class LdapConfig(Section):
    url: str = Field(..., description="ldap://host:389 or ldaps://host:636 (space-separated list)")
    bind_dn: str
    bind_password: str
    user_base_dn: str
    user_filter: str = Field("(objectClass=inetOrgPerson)", description="ANDed with username")
    attributes: LdapAttributeMap = LdapAttributeMap()
    group_search: LdapGroupSearch | None = None
    nested_groups: bool = False
    start_tls: bool = False
    ca_file: Path | None = None
    verify_tls: bool = True
    pool_size: int = Field(4, ge=1, le=64)
    timeout: float = Field(5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _url(self) -> LdapConfig:
        for u in self.url.split():
            if not re.match(r"^ldaps?://[^/\s]+/?$", u):
                raise ValueError(f"`{u}` is not an ldap:// or ldaps:// URL")
        if self.start_tls and any(u.startswith("ldaps://") for u in self.url.split()):
            raise ValueError("start_tls and ldaps:// exclude each other")
        return self


class DirectoryConfig(Section):
    type: Literal["file", "ldap"] = "file"
    file: FileDirectoryConfig | None = None
    ldap: LdapConfig | None = None

    @model_validator(mode="after")
    def _backend(self) -> DirectoryConfig:
        if self.type == "file" and self.file is None:
            raise ValueError("type `file` needs a `file` section")
        if self.type == "ldap" and self.ldap is None:
            raise ValueError("type `ldap` needs an `ldap` section")
        return self


class KeysConfig(Section):
    dir: Path = Path("keys")
    generate: bool = Field(False, description="create keys on start when none exist")


class SessionConfig(Section):
    cookie_name: str = Field("idp_session", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    idle_timeout: int = Field(1800, ge=60, le=86400)
    absolute_timeout: int = Field(28800, ge=300, le=7 * 86400)
    secure_cookie: Literal["auto", "always", "never"] = "auto"

    @model_validator(mode="after")
    def _timeouts(self) -> SessionConfig:
        if self.idle_timeout > self.absolute_timeout:
            raise ValueError("idle_timeout cannot exceed absolute_timeout")
        return self


class LoginConfig(Section):
    """Throttling (see ``idp/login/throttle.py`` for the design)."""

    account_failures_per_hour: int = Field(100, ge=1, le=100)
    device_failures_per_hour: int = Field(10, ge=1, le=100)
    ip_failures_per_window: int = Field(50, ge=1, le=10000)
    ip_window: int = Field(900, ge=60, le=86400)
    device_cookie_days: int = Field(90, ge=1, le=365)


class AuditConfig(Section):
    sink: Literal["file", "stdout", "none"] = "file"
    path: Path = Path("audit.log")


class WebConfig(Section):
    trusted_proxies: int = Field(0, ge=0, le=5, description="X-Forwarded-* hops to trust")
    max_form_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)


class IamConfig(Section):
    """IAM model (accounts, roles, policies, providers, mapping): see ``idp/iam``."""

    model_config = ConfigDict(extra="allow", frozen=True)


class SamlConfig(Section):
    """SAML 2.0 IdP settings: see ``idp/saml``."""

    model_config = ConfigDict(extra="allow", frozen=True)


class OidcConfig(Section):
    """OpenID Connect provider settings: see ``idp/oidc``."""

    model_config = ConfigDict(extra="allow", frozen=True)


class StsConfig(Section):
    """STS settings: see ``idp/sts``."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Config(Section):
    issuer: str = Field(..., pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    secret_key: str = Field(..., min_length=32, description="HMAC key for CSRF and cookies")
    store: StoreConfig = StoreConfig()
    directory: DirectoryConfig
    keys: KeysConfig = KeysConfig()
    session: SessionConfig = SessionConfig()
    login: LoginConfig = LoginConfig()
    audit: AuditConfig = AuditConfig()
    web: WebConfig = WebConfig()
    metadata_dirs: list[Path] = [Path("metadata")]
    iam: IamConfig = IamConfig()
    saml: SamlConfig = SamlConfig()
    oidc: OidcConfig = OidcConfig()
    sts: StsConfig = StsConfig()

    @property
    def tls(self) -> bool:
        return self.issuer.startswith("https://")


def _expand_env(node: Any, path: str, env: dict[str, str], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k), env, problems)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str):
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                problems.append(f"{path}: environment variable `{name}` is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(sub, node)
    return node


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "function_")) and part not in {"tagged-union"}:
            out += f".{part}" if out else part
    return out or "(top level)"


def parse_config(data: Any, *, env: dict[str, str] | None = None,
                 base_dir: Path | None = None) -> Config:
    """Validate a config mapping; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(["(top level): the configuration must be a mapping"])
    data = _expand_env(data, "", dict(os.environ) if env is None else env, problems)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_loc(err['loc'])}: {msg}")
    if problems or config is None:
        raise ConfigError(problems)
    if base_dir is not None:
        config = _resolve_paths(config, base_dir)
    return config


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in the file are relative to the file's own folder."""

    def rel(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    d = config.directory
    if d.file is not None:
        d = d.model_copy(update={"file": d.file.model_copy(update={"path": rel(d.file.path)})})
    if d.ldap is not None and d.ldap.ca_file is not None:
        d = d.model_copy(update={"ldap": d.ldap.model_copy(update={"ca_file": rel(d.ldap.ca_file)})})
    return config.model_copy(update={
        "directory": d,
        "keys": config.keys.model_copy(update={"dir": rel(config.keys.dir)}),
        "audit": config.audit.model_copy(update={"path": rel(config.audit.path)}),
        "metadata_dirs": [rel(p) for p in config.metadata_dirs],
    })


def load_config(path: Path | str, *, env: dict[str, str] | None = None) -> Config:
    """Load and validate a YAML config file; every problem is reported at once."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    return parse_config(data, env=env, base_dir=path.parent)
