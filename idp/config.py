"""Typed configuration: one YAML file, validated once at start, every problem reported at once.

Values of the form ``${NAME}`` (upper case, digits, ``_``) are read from the environment (so
secrets need not live in the file); a missing variable is a problem like any other.  Other
``${…}`` forms are left alone: IAM policy variables (``${aws:username}``) and mapping
templates (``${email}``) use them.  Each component receives only its own
section (``config.store``, ``config.directory``…).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from idp.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class Section(BaseModel):
    """A config section: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Section):
    url: str = Field("memory://", description="memory:// or a redis[s][+sentinel|+cluster]:// URL")
    socket_timeout: float = Field(2.0, gt=0, le=60)
    wait_replicas: int = Field(0, ge=0, le=16, description="replicas that must acknowledge "
                               "each write (Redis WAIT) before it is acknowledged; 0: none")
    wait_timeout_ms: int = Field(100, ge=1, le=60000, description="how long WAIT waits for "
                                 "them; fewer replicas in time fail the request with a 503")

    @model_validator(mode="after")
    def _scheme(self) -> StoreConfig:
        scheme = self.url.split("://", 1)[0].lower() if "://" in self.url else ""
        allowed = {"memory", "redis", "rediss", "redis+sentinel", "rediss+sentinel",
                   "redis+cluster", "rediss+cluster", "unix"}
        if scheme not in allowed:
            raise ValueError(f"unsupported store URL scheme `{scheme or self.url}`")
        if self.wait_replicas and scheme == "memory":
            raise ValueError("wait_replicas needs a Redis store: memory:// has no replicas")
        if self.wait_replicas and self.wait_timeout_ms >= self.socket_timeout * 1000:
            raise ValueError(f"wait_timeout_ms ({self.wait_timeout_ms}) must be shorter than "
                             f"socket_timeout ({self.socket_timeout} s), or every WAIT that "
                             "runs out of time is seen as a dead connection")
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
    password_change: Literal["modify_password", "ad_unicode_pwd"] = Field(
        "modify_password", description="RFC 3062 Password Modify, or Active Directory's "
        "unicodePwd (needs ldaps:// or start_tls)")
    password_reset: bool = Field(
        False, description="forgot password sets the new password with the service account "
        "(it must be allowed to write passwords)")

    @model_validator(mode="after")
    def _url(self) -> LdapConfig:
        for u in self.url.split():
            if not re.match(r"^ldaps?://[^/\s]+/?$", u):
                raise ValueError(f"`{u}` is not an ldap:// or ldaps:// URL")
        if self.start_tls and any(u.startswith("ldaps://") for u in self.url.split()):
            raise ValueError("start_tls and ldaps:// exclude each other")
        if self.password_change == "ad_unicode_pwd" and not self.start_tls and any(
                u.startswith("ldap://") for u in self.url.split()):
            raise ValueError("password_change `ad_unicode_pwd` needs ldaps:// or start_tls")
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


class PasswordPolicyConfig(Section):
    """Password rules (NIST SP 800-63B §5.1.1.2); see docs/passwords.md for each default."""

    min_length: int = Field(8, ge=8, le=64, description="Unicode code points; 15 is "
                            "recommended when the password is the only factor")
    max_length: int = Field(1024, ge=64, le=1024, description="at least 64 must be allowed")
    blocklist: bool = Field(True, description="refuse the shipped list of common passwords")
    blocklist_files: list[Path] = Field([], description="extra lists, one password a line")
    context_words: list[str] = Field([], description="words refused besides the username, "
                                     "e-mail, name and the issuer's host name")
    require_upper: bool = False
    require_lower: bool = False
    require_digit: bool = False
    require_symbol: bool = False
    max_age_days: int | None = Field(None, ge=1, le=3650,
                                     description="off by default: NIST advises against it")
    expiry_warning_days: int = Field(14, ge=0, le=365)


class MailConfig(Section):
    """SMTP for password-reset links (RFC 5321); off when the section is absent."""

    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field(..., pattern=r"^[^@\s]+@[^@\s]+$")
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = Field(10.0, gt=0, le=60)
    resets_per_hour: int = Field(3, ge=1, le=100, description="per address and per client")


class KeysConfig(Section):
    dir: Path = Path("keys")
    generate: bool = Field(False, description="create keys on start when none exist")


class SessionConfig(Section):
    cookie_name: str = Field("idp_session", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    idle_timeout: int = Field(1800, ge=60, le=86400)
    absolute_timeout: int = Field(28800, ge=300, le=7 * 86400)
    secure_cookie: Literal["auto", "always", "never"] = "auto"
    directory_recheck: int = Field(300, ge=0, le=86400, description="seconds between two "
                                   "directory checks of a signed-in person (0: every request)")

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


class AlertRule(Section):
    """One alert rule: fires once per ``window`` (fixed, clock-aligned) for a subject whose
    count reaches ``threshold`` (see ``idp/audit/alerts.py`` for what each kind counts)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal["spray", "stuffing", "failed_account", "failed_ip", "lockout",
                  "sts_refusals", "role_assumed", "admin_action"]
    threshold: int = Field(10, ge=1, le=1_000_000)
    window: int = Field(600, ge=10, le=86400, description="seconds")
    roles: list[str] = Field([], description="role_assumed: the watched roles (empty: all)")


class AlertsConfig(Section):
    """Alert rules, delivered to the audit log and, when set, to a webhook (HMAC-signed)."""

    webhook_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    webhook_secret: str | None = Field(None, min_length=16)
    rules: list[AlertRule] = []

    @model_validator(mode="after")
    def _secret(self) -> AlertsConfig:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url needs a webhook_secret (deliveries are signed)")
        return self


class AuditConfig(Section):
    """Where audit records go: ``file`` (one file of JSON lines at ``path``), ``trail``
    (rolling log files and signed digests in ``dir``, see ``idp/audit/trail.py``),
    ``stdout`` or ``none``."""

    sink: Literal["file", "trail", "stdout", "none"] = "file"
    path: Path = Path("audit.log")
    dir: Path = Field(Path("audit"), description="the trail's folder (sink: trail)")
    keys_dir: Path = Field(Path("keys/audit"), description="the audit signing keys")
    integrity: bool = Field(True, description="digest and sign the trail's log files")
    roll_seconds: int = Field(3600, ge=1, le=86400, description="period of a log file")
    roll_bytes: int = Field(64 * 1024 * 1024, ge=4096, le=1 << 32)
    retention_days: int = Field(90, ge=1, le=3650, description="lookup index retention")
    delivery: Literal["async", "sync"] = Field(
        "async", description="async: a writer thread writes records in batches, off the "
        "request path (see docs/audit.md for what a crash can lose); sync: in the request")
    flush_interval_ms: int = Field(100, ge=1, le=1000,
                                   description="async: the writer writes at least this often")
    queue_size: int = Field(10000, ge=1, le=1_000_000,
                            description="async: records queued at most (then requests wait)")
    alerts: AlertsConfig = AlertsConfig()


class WebConfig(Section):
    trusted_proxies: int = Field(0, ge=0, le=5, description="X-Forwarded-* hops to trust")
    max_form_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)


class LoggingConfig(Section):
    """The operational log (``idp.*`` loggers) on stderr; the audit trail is apart."""

    format: Literal["text", "json"] = Field("text", description="json: one object a line")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"


class MetricsConfig(Section):
    """``GET /metrics`` in the Prometheus text format (off unless enabled)."""

    enabled: bool = False
    token: str | None = Field(None, min_length=16,
                              description="bearer token that opens /metrics from anywhere")
    networks: list[str] = Field(["127.0.0.1/32", "::1/128"],
                                description="client networks that need no token")

    @field_validator("networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)  # ValueError names the bad one
        return value


_IAM_NAME = r"^[\w+=,.@-]{1,128}$"
_IAM_PATH = r"^/(?:[\x21-\x7e]*/)?$"
_ACCOUNT = r"^\d{12}$"


class IamAccountConfig(Section):
    id: str = Field(..., pattern=_ACCOUNT)
    alias: str | None = None
    scps: list[str] = Field([], description="names of `iam.scps` attached to this account")


class IamPolicyConfig(Section):
    """A customer managed policy (or an SCP): a name and a JSON policy document."""

    name: str = Field(..., pattern=_IAM_NAME)
    path: str = Field("/", pattern=_IAM_PATH)
    account: str | None = Field(None, pattern=_ACCOUNT, description="default: first account")
    description: str = ""
    document: dict[str, Any]


class IamRoleConfig(Section):
    name: str = Field(..., pattern=r"^[\w+=,.@-]{1,64}$")
    path: str = Field("/", pattern=_IAM_PATH)
    account: str | None = Field(None, pattern=_ACCOUNT, description="default: first account")
    description: str = ""
    trust_policy: dict[str, Any] | None = Field(
        None, description="default: the account's SAML providers, and this IdP's OIDC provider "
                          "for the people the mapping gives the role (docs/iam.md)")
    inline_policies: dict[str, dict[str, Any]] = {}
    managed_policies: list[str] = Field([], description="names or ARNs of `iam.policies`")
    permissions_boundary: str | None = Field(None, description="name or ARN of a policy")
    max_session_duration: int = Field(3600, ge=3600, le=43200)
    tags: dict[str, str] = {}


class IamSamlProviderConfig(Section):
    name: str = Field(..., pattern=r"^[\w.+=,@-]{1,128}$")
    account: str | None = Field(None, pattern=_ACCOUNT)
    metadata_file: Path | None = None
    metadata_xml: str | None = None


class IamOidcProviderConfig(Section):
    url: str = Field(..., pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    account: str | None = Field(None, pattern=_ACCOUNT)
    client_ids: list[str] = []
    jwks_url: str | None = None
    jwks_file: Path | None = None
    thumbprints: list[str] = []


class IamMappingRuleConfig(Section):
    """Directory groups/attributes -> a role, for some (or all) service providers and clients."""

    role: str = Field(..., description="role name or ARN")
    groups: list[str] = Field([], description="any of these groups")
    attributes: dict[str, str | list[str]] = Field({}, description="all of these must match")
    everyone: bool = False
    service_providers: list[str] = Field([], description="SP entity IDs / client IDs; [] = all")
    principal_tags: dict[str, str] = Field({}, description="values may use ${attribute}")
    transitive_tag_keys: list[str] = []
    saml_provider: str | None = None
    oidc_provider: str | None = None
    workloads: list[str] = Field(
        [], description="client IDs of confidential clients that take the role themselves "
                        "(client credentials token + AssumeRoleWithWebIdentity)")

    @model_validator(mode="after")
    def _who(self) -> IamMappingRuleConfig:
        if not (self.groups or self.attributes or self.everyone or self.workloads):
            raise ValueError("a mapping rule needs `groups`, `attributes`, `everyone: true` "
                             "or `workloads`")
        return self


class IamConfig(Section):
    """IAM model (accounts, roles, policies, providers, mapping): see ``idp/iam``."""

    accounts: list[IamAccountConfig] = []
    policies: list[IamPolicyConfig] = []
    roles: list[IamRoleConfig] = []
    scps: list[IamPolicyConfig] = []
    saml_providers: list[IamSamlProviderConfig] = []
    oidc_providers: list[IamOidcProviderConfig] = []
    mapping: list[IamMappingRuleConfig] = []

    @property
    def empty(self) -> bool:
        return not (self.accounts or self.policies or self.roles or self.scps
                    or self.saml_providers or self.oidc_providers or self.mapping)


class SamlSpOptions(Section):
    """What the IdP does for one service provider beyond its metadata."""

    idp_initiated: bool = Field(False, description="allow /saml/idp-initiated to this SP")
    aws_attributes: bool = Field(False, description="send the AWS Role/RoleSessionName/… set")
    attribute_map: dict[str, str] = Field(
        {}, description="SAML attribute name -> directory attribute (username, email, name, "
                        "groups, subject); replaces the default map")
    name_id_format: str | None = Field(None, description="default when the request names none")
    encrypt_assertions: bool | None = Field(
        None, description="default: when the metadata has a use=\"encryption\" key")


class SamlConfig(Section):
    """SAML 2.0 IdP settings: see ``idp/saml``."""

    assertion_lifetime: int = Field(300, ge=30, le=3600, description="Conditions window (s)")
    clock_skew: int = Field(60, ge=0, le=600, description="NotBefore back-dating (s)")
    request_max_age: int = Field(600, ge=30, le=3600, description="AuthnRequest IssueInstant")
    pending_ttl: int = Field(900, ge=60, le=3600, description="a request waiting for login")
    want_authn_requests_signed: bool = False
    sign_metadata: bool = False
    relay_state_max: int = Field(80, ge=80, le=4096, description="SAML Bindings §3.4.3: 80")
    max_message_bytes: int = Field(64 * 1024, ge=4096, le=1024 * 1024,
                                   description="decoded (inflated) message size limit")
    aws_session_duration: int = Field(3600, ge=900, le=43200)
    service_providers: dict[str, SamlSpOptions] = Field({}, description="by entity ID")


OidcGrantType = Literal["authorization_code", "refresh_token", "client_credentials",
                        "urn:ietf:params:oauth:grant-type:device_code"]


class OidcClientConfig(Section):
    """One OAuth 2.0 / OIDC client (OIDC Dynamic Client Registration §2 metadata names)."""

    client_id: str = Field(..., pattern=r"^[\w.:@~-]{1,128}$")
    client_name: str = ""
    client_secret: str | None = Field(
        None, description="plain, `sha256:<hex>` or an argon2 hash; `${ENV}` references work")
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post",
                                        "private_key_jwt", "none"] = "client_secret_basic"
    jwks: dict[str, Any] | None = Field(None, description="public keys for private_key_jwt")
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    grant_types: list[OidcGrantType] = ["authorization_code", "refresh_token"]
    scopes: list[str] = ["openid", "profile", "email", "groups", "roles", "offline_access"]
    native: bool = Field(False, description="loopback redirects on any port (RFC 8252 §7.3)")
    subject_type: Literal["public", "pairwise"] = "public"
    require_consent: bool = True
    access_token_alg: Literal["RS256", "ES256"] | None = None
    access_token_format: Literal["jwt", "opaque"] = Field(
        "jwt", description="jwt: signed (RFC 9068); opaque: a reference looked up in the store")

    @model_validator(mode="after")
    def _auth(self) -> OidcClientConfig:
        method = self.token_endpoint_auth_method
        if method in ("client_secret_basic", "client_secret_post") and not self.client_secret:
            raise ValueError(f"`{method}` needs a `client_secret`")
        if method == "private_key_jwt" and not self.jwks:
            raise ValueError("`private_key_jwt` needs `jwks`")
        if method == "none" and ("client_credentials" in self.grant_types):
            raise ValueError("a public client cannot use `client_credentials`")
        for uri in [*self.redirect_uris, *self.post_logout_redirect_uris]:
            if not re.match(r"^[a-zA-Z][\w+.-]*://[^\s#]+$", uri):
                raise ValueError(f"`{uri}` is not an absolute URI without fragment")
        return self


class OidcConfig(Section):
    """OpenID Connect provider settings: see ``idp/oidc``.  Lifetimes in seconds."""

    clients: list[OidcClientConfig] = []
    code_ttl: int = Field(60, ge=5, le=600)
    access_token_ttl: int = Field(900, ge=30, le=86400)
    id_token_ttl: int = Field(900, ge=30, le=86400)
    refresh_token_ttl: int = Field(14 * 86400, ge=60, le=365 * 86400)
    refresh_family_ttl: int = Field(30 * 86400, ge=60, le=365 * 86400)
    device_code_ttl: int = Field(600, ge=60, le=3600)
    device_poll_interval: int = Field(5, ge=1, le=60)
    consent_ttl: int = Field(90 * 86400, ge=60, le=3 * 365 * 86400)
    id_token_alg: Literal["RS256", "ES256"] = "RS256"
    access_token_alg: Literal["RS256", "ES256"] = "RS256"
    access_token_audience: str | None = Field(None, description="default: the issuer")
    pairwise_salt: str | None = Field(None, description="default: derived from secret_key")

    @model_validator(mode="after")
    def _unique(self) -> OidcConfig:
        ids = [c.client_id for c in self.clients]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        if dups:
            raise ValueError(f"duplicate client_id `{dups[0]}`")
        return self


class StsAccessKeyConfig(Section):
    """A long-term access key of an IAM user (for ``GetSessionToken``/``AssumeRole``)."""

    access_key_id: str = Field(..., pattern=r"^AKIA[A-Z2-7]{16}$")
    secret_access_key: str = Field(..., min_length=40, max_length=128)
    principal_arn: str = Field(
        ..., pattern=r"^arn:aws:iam::[0-9]{12}:user/[A-Za-z0-9_+=,.@/-]{1,512}$")


class StsConfig(Section):
    """STS settings: see ``idp/sts``.  Times in seconds."""

    access_keys: list[StsAccessKeyConfig] = []
    saml_clock_skew: int = Field(120, ge=0, le=600, description="assertion time window skew")
    token_clock_skew: int = Field(60, ge=0, le=600, description="web identity token skew")
    default_duration: int = Field(3600, ge=900, le=43200)
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")


class MfaTotpDeviceConfig(Section):
    """A virtual MFA device of an IAM user (``GetSessionToken``/``AssumeRole`` with
    ``SerialNumber`` and ``TokenCode``)."""

    serial_number: str = Field(
        ..., pattern=r"^arn:aws:iam::[0-9]{12}:mfa/[A-Za-z0-9_+=,.@-]{1,128}$")
    access_key_id: str = Field(..., pattern=r"^AKIA[A-Z2-7]{16}$",
                               description="the long-term access key it belongs to")
    secret: str = Field(..., pattern=r"^[A-Z2-7]{16,128}$", description="TOTP secret, base32")


class MfaRequireConfig(Section):
    """Who must use a second factor: any one rule that matches requires it."""

    groups: list[str] = []
    roles: list[str] = Field([], description="IAM role names or ARNs")
    service_providers: list[str] = Field([], description="SAML SP entity IDs")
    clients: list[str] = Field([], description="OIDC client IDs")


class MfaSmtpConfig(Section):
    """Where email codes are sent from (``smtplib``)."""

    host: str = Field(..., min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="STARTTLS, implicit TLS (port 465), or none (a local relay)")
    username: str | None = None
    password: str | None = None
    sender: str = Field(..., pattern=r"^[^\s@]+@[^\s@]+$")
    timeout: float = Field(10.0, gt=0, le=60)


class MfaSnsConfig(Section):
    """AWS SNS ``Publish`` to a phone number (boto3)."""

    region: str = "us-east-1"
    endpoint_url: str | None = Field(None, pattern=r"^https?://")
    access_key_id: str | None = None
    secret_access_key: str | None = None


class MfaWebhookConfig(Section):
    """A JSON POST signed with HMAC-SHA256 (header ``X-Idp-Signature``)."""

    url: str = Field(..., pattern=r"^https?://[^\s]+$")
    secret: str = Field(..., min_length=32)
    timeout: float = Field(10.0, gt=0, le=60)


class MfaTextConfig(Section):
    sender: Literal["sns", "webhook"]
    sns: MfaSnsConfig | None = None
    webhook: MfaWebhookConfig | None = None

    @model_validator(mode="after")
    def _configured(self) -> MfaTextConfig:
        if getattr(self, self.sender) is None:
            raise ValueError(f"sender `{self.sender}` needs its `{self.sender}` section")
        return self


class MfaConfig(Section):
    """Second factors: see ``idp/mfa``.  Times in seconds."""

    factors: list[Literal["totp", "recovery", "email", "sms", "webauthn"]] = [
        "totp", "recovery", "webauthn"]
    email: MfaSmtpConfig | None = None
    text: MfaTextConfig | None = None
    code_digits: int = Field(6, ge=6, le=8, description="digits of sent codes")
    code_ttl: int = Field(300, ge=60, le=900, description="how long a sent code works")
    resend_interval: int = Field(30, ge=0, le=600, description="between two sends")
    sends_per_person: int = Field(5, ge=1, le=100, description="codes sent per send_window")
    sends_per_ip: int = Field(20, ge=1, le=10000, description="codes sent per send_window")
    send_window: int = Field(3600, ge=60, le=86400)
    require: MfaRequireConfig = MfaRequireConfig()
    sign_in: Literal["enrolled", "required"] = Field(
        "enrolled", description="ask for a second factor at sign-in from everyone who has one "
                                "(`enrolled`), or only from those `require.groups` names "
                                "(`required`; others step up when a role, SP or client asks)")
    grace: bool = Field(False, description="a person who must use MFA and has no factor "
                                           "enrols one at sign-in instead of being refused")
    enrolments_dir: Path | None = Field(
        None, description="folder of enrolments (default: `mfa` beside the users file)")
    encryption_keys: list[str] = Field(
        [], description="keys (≥32 characters) that encrypt factor secrets at rest: the first "
                        "encrypts, every one decrypts (rotation); default: from secret_key")
    issuer_name: str = Field("idp", min_length=1, max_length=64,
                             description="the name authenticator apps show")
    factor_failures: int = Field(5, ge=1, le=100, description="wrong codes before a factor "
                                                              "locks for `lockout_window`")
    person_failures: int = Field(20, ge=1, le=1000, description="wrong codes over all code "
                                                                "factors before they lock")
    lockout_window: int = Field(900, ge=60, le=86400)
    step_max_age: int = Field(300, ge=30, le=86400,
                              description="how fresh a second factor must be to remove one")
    trust_external_idps: bool = Field(
        False, description="let another IdP's token say MFA to the STS")
    devices: list[MfaTotpDeviceConfig] = []

    @field_validator("encryption_keys")
    @classmethod
    def _long_keys(cls, v: list[str]) -> list[str]:
        if any(len(k) < 32 for k in v):
            raise ValueError("every encryption key needs at least 32 characters")
        return v

    @model_validator(mode="after")
    def _senders(self) -> MfaConfig:
        if "email" in self.factors and self.email is None:
            raise ValueError("factor `email` needs the `email` (SMTP) section")
        if "sms" in self.factors and self.text is None:
            raise ValueError("factor `sms` needs the `text` section")
        return self


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
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    metadata_dirs: list[Path] = [Path("metadata")]
    iam: IamConfig = IamConfig()
    saml: SamlConfig = SamlConfig()
    oidc: OidcConfig = OidcConfig()
    sts: StsConfig = StsConfig()
    mfa: MfaConfig = MfaConfig()
    passwords: PasswordPolicyConfig = PasswordPolicyConfig()
    mail: MailConfig | None = None

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
        ldap = d.ldap.model_copy(update={"ca_file": rel(d.ldap.ca_file)})
        d = d.model_copy(update={"ldap": ldap})
    iam = config.iam.model_copy(update={
        "saml_providers": [p.model_copy(update={"metadata_file": rel(p.metadata_file)})
                           if p.metadata_file is not None else p
                           for p in config.iam.saml_providers],
        "oidc_providers": [p.model_copy(update={"jwks_file": rel(p.jwks_file)})
                           if p.jwks_file is not None else p
                           for p in config.iam.oidc_providers],
    })
    return config.model_copy(update={
        "iam": iam,
        "directory": d,
        "keys": config.keys.model_copy(update={"dir": rel(config.keys.dir)}),
        "audit": config.audit.model_copy(update={
            "path": rel(config.audit.path), "dir": rel(config.audit.dir),
            "keys_dir": rel(config.audit.keys_dir)}),
        "mfa": config.mfa if config.mfa.enrolments_dir is None else config.mfa.model_copy(
            update={"enrolments_dir": rel(config.mfa.enrolments_dir)}),
        "metadata_dirs": [rel(p) for p in config.metadata_dirs],
        "passwords": config.passwords.model_copy(update={
            "blocklist_files": [rel(p) for p in config.passwords.blocklist_files]}),
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
