"""The LDAP directory (OpenLDAP, Active Directory) on ldap3: search, then bind.

A pool of connections bound as the service account searches for the user (RFC 4511 §4.5)
with an RFC 4515 escaped filter; exactly one entry must match.  The password is then checked
by a simple bind as that entry's DN (RFC 4513 §5.1.3) on a fresh connection that is closed at
once and never pooled.  Groups come from ``memberOf`` or from a group search, optionally
followed through nested groups.  Every network or server failure is
:class:`~idp.errors.DirectoryUnavailable`; every credential problem is one
:class:`~idp.errors.AuthenticationFailed`.
"""

from __future__ import annotations

import logging
import math
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ldap3 import BASE, MODIFY_REPLACE, NONE, SIMPLE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

from idp import metrics
from idp.config import LdapConfig
from idp.directory import MAX_PASSWORD, Identity, ldap_state, valid_username
from idp.errors import (
    AccountRefused,
    AuthenticationFailed,
    ConfigError,
    DirectoryUnavailable,
    PasswordRejected,
)

log = logging.getLogger(__name__)


def _down(debug: str) -> DirectoryUnavailable:
    """A :class:`DirectoryUnavailable`, logged with its cause (the client sees neither)."""
    log.error("directory unavailable: %s", debug)
    metrics.directory_error()
    return DirectoryUnavailable(debug=debug)

T = TypeVar("T")

MAX_GROUP_DEPTH = 8
"""Levels of nested groups followed before giving up (the walk is cycle-safe anyway)."""
MAX_GROUPS = 512
"""Groups collected for one user at most."""

# RFC 4511 Appendix A result codes.
_SUCCESS, _SIZE_LIMIT_EXCEEDED, _NO_SUCH_OBJECT = 0, 4, 32
_UNAVAILABLE = {3, 51, 52, 80}  # timeLimitExceeded, busy, unavailable, other


def escape_filter_value(value: str) -> str:
    r"""Escape an assertion value for a search filter (RFC 4515 §3).

    ``\``, ``*``, ``(``, ``)`` and NUL become ``\5c``, ``\2a``, ``\28``, ``\29``, ``\00``:
    a username can never add a wildcard or a filter component.
    """
    return "".join(f"\\{ord(c):02x}" if c in "\\*()\x00" else c for c in value)


def _unescape_dn_value(value: str) -> str:
    """Undo RFC 4514 §2.4 escaping in an attribute value of a DN."""
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(h in "0123456789abcdefABCDEF" for h in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def group_name_from_dn(dn: str) -> str:
    """The value of a group DN's first RDN, e.g. ``admins`` for ``cn=admins,ou=groups,…``."""
    try:
        rdn = parse_dn(dn, escape=False, strip=True)[0]
    except (LDAPException, IndexError):
        return dn
    return _unescape_dn_value(str(rdn[1]))


@dataclass(frozen=True)
class _Entry:
    dn: str
    attributes: dict[str, list[bytes]]  # keys lower-cased

    def values(self, name: str) -> list[str]:
        return [v.decode("utf-8", errors="replace") for v in self.attributes.get(name.lower(), [])]

    def first(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None


def _subject(entry: _Entry, attribute: str) -> str | None:
    """``entryUUID`` (RFC 4530) as text, or AD's 16-byte little-endian ``objectGUID``."""
    raw = entry.attributes.get(attribute.lower())
    if not raw:
        return None
    value = raw[0]
    if attribute.lower() == "objectguid" and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.hex()


class LdapDirectory:
    """A :class:`idp.directory.Directory` over LDAP (search-then-bind)."""

    def __init__(self, config: LdapConfig) -> None:
        self._config = config
        self._attrs = config.attributes
        flt = config.user_filter.strip()
        self._user_filter = flt if flt.startswith("(") else f"({flt})"
        try:
            self._servers = [self._server(u) for u in config.url.split()]
        except LDAPException as exc:
            raise ConfigError([f"directory.ldap: {exc}"]) from exc
        # ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds.
        self._receive_timeout = max(1, math.ceil(config.timeout))
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(config.pool_size)

    def _server(self, url: str) -> Server:
        parts = urlsplit(url)
        use_ssl = parts.scheme.lower() == "ldaps"
        host = parts.hostname or "localhost"
        tls = Tls(
            validate=ssl.CERT_REQUIRED if self._config.verify_tls else ssl.CERT_NONE,
            ca_certs_file=str(self._config.ca_file) if self._config.ca_file else None,
            sni=host,
        )
        return Server(host, port=parts.port or (636 if use_ssl else 389), use_ssl=use_ssl,
                      tls=tls, get_info=NONE, connect_timeout=self._config.timeout)

    # -- connections ---------------------------------------------------------------------

    def _open(self, user: str, password: str) -> Connection:
        """An open (StartTLS'd when configured) but unbound connection to the first server up."""
        errors: list[str] = []
        for server in self._servers:
            # ldap3 remembers a refused address and then fails at once with "invalid server
            # address"; the failover is ours, so every attempt really connects and the true
            # cause (refused, timed out, TLS) is reported
            server.reset_availability()
            conn = Connection(server, user=user, password=password, authentication=SIMPLE,
                              client_strategy=SYNC, read_only=True, raise_exceptions=False,
                              auto_referrals=False,  # never send credentials elsewhere
                              receive_timeout=self._receive_timeout)
            try:
                conn.open(read_server_info=False)
                if self._config.start_tls:
                    conn.start_tls(read_server_info=False)
                return conn
            except (LDAPException, OSError) as exc:
                errors.append(f"{server.host}:{server.port}: {type(exc).__name__}: {exc}")
                _quietly_close(conn)
        raise _down("no LDAP server answers: " + "; ".join(errors))

    def _new_service_connection(self) -> Connection:
        conn = self._open(self._config.bind_dn, self._config.bind_password)
        try:
            bound = conn.bind()
        except (LDAPException, OSError) as exc:
            _quietly_close(conn)
            raise _down(f"service bind: {type(exc).__name__}: {exc}") from exc
        if not bound:
            _quietly_close(conn)
            raise _down(
                f"service account bind refused: {conn.result.get('description')}")
        return conn

    def _service(self, op: Callable[[Connection], T]) -> T:
        """Run ``op`` on a pooled service connection; a stale pooled one is replaced once."""
        for attempt in (1, 2):
            if not self._slots.acquire(timeout=self._config.timeout):
                raise _down("all pooled LDAP connections are busy")
            try:
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                reused = conn is not None
                if conn is None:
                    conn = self._new_service_connection()
                try:
                    result = op(conn)
                except (LDAPException, OSError) as exc:
                    _quietly_close(conn)
                    if reused and attempt == 1:
                        log.info("dropping a stale pooled LDAP connection: %s", exc)
                        continue
                    raise _down(
                        f"LDAP operation failed: {type(exc).__name__}: {exc}") from exc
                except BaseException:
                    _quietly_close(conn)
                    raise
                with self._lock:
                    self._idle.append(conn)
                return result
            finally:
                self._slots.release()
        raise AssertionError("unreachable")

    def _user_bind(self, dn: str, password: str) -> tuple[bool, str | None,
                                                         ldap_state.PpolicyResponse]:
        """Simple bind as ``dn`` on a fresh connection (RFC 4513 §5.1.3); closed right after.
        Also the refusal's diagnostic message (Active Directory puts the account state there)
        and the password policy response control (OpenLDAP's expiry warning, grace logins)."""
        conn = self._open(dn, password)
        try:
            ok = conn.bind(controls=[(ldap_state.PPOLICY_CONTROL, False, None)])
            result = conn.result or {}
        except (LDAPException, OSError) as exc:
            raise _down(f"user bind: {type(exc).__name__}") from exc
        finally:
            _quietly_close(conn)
        control = (result.get("controls") or {}).get(ldap_state.PPOLICY_CONTROL) or {}
        value = control.get("value")
        ppolicy = ldap_state.decode_ppolicy(value if isinstance(value, bytes) else None)
        if ok:
            return True, None, ppolicy
        if result.get("result") in _UNAVAILABLE:
            raise _down(f"user bind: {result.get('description')}")
        message = result.get("message")
        return False, str(message) if message else None, ppolicy

    # -- searches ------------------------------------------------------------------------

    def _search(self, conn: Connection, base: str, flt: str, scope: str,
                attributes: Iterable[str], size_limit: int = 0) -> list[_Entry]:
        conn.search(search_base=base, search_filter=flt, search_scope=scope,
                    attributes=list(attributes), size_limit=size_limit,
                    time_limit=self._receive_timeout)
        code = conn.result.get("result")
        if code == _NO_SUCH_OBJECT:
            log.warning("LDAP search base `%s` does not exist", base)
            return []
        if code not in (_SUCCESS, _SIZE_LIMIT_EXCEEDED):
            raise _down(
                f"LDAP search under `{base}` failed: {conn.result.get('description')}")
        return [
            _Entry(str(r["dn"]), {str(k).lower(): list(v) for k, v in r["raw_attributes"].items()})
            for r in conn.response or [] if r.get("type") == "searchResEntry"
        ]

    def _find_user(self, conn: Connection, username: str) -> _Entry | None:
        """The one entry whose username attribute equals ``username`` (RFC 4515 escaped)."""
        a = self._attrs
        flt = f"(&{self._user_filter}({a.username}={escape_filter_value(username)}))"
        wanted = [a.username, a.subject, a.email, a.name, *ldap_state.STATE_ATTRIBUTES]
        if self._config.group_search is None:
            wanted.append(a.member_of)
        found = self._search(conn, self._config.user_base_dn, flt, SUBTREE, wanted, size_limit=2)
        if len(found) != 1:
            log.debug("user search for `%s` found %d entries", username, len(found))
            return None
        return found[0]

    def _groups(self, conn: Connection, user: _Entry) -> tuple[str, ...]:
        """Group names of ``user``, following nested groups when configured (cycle-safe)."""
        gs = self._config.group_search
        names: dict[str, None] = {}
        seen: set[str] = set()

        def members_of(dn: str) -> list[tuple[str, str]]:
            """(group DN, group name) of the groups ``dn`` is a direct member of."""
            if gs is None:
                entry = user if dn == user.dn else next(
                    iter(self._search(conn, dn, "(objectClass=*)", BASE, [self._attrs.member_of])),
                    None)
                dns = entry.values(self._attrs.member_of) if entry else []
                return [(g, group_name_from_dn(g)) for g in dns]
            flt = gs.filter.replace("{dn}", escape_filter_value(dn))
            found = self._search(conn, gs.base_dn, flt, SUBTREE, [gs.name_attribute])
            return [(e.dn, e.first(gs.name_attribute) or group_name_from_dn(e.dn)) for e in found]

        frontier = [user.dn]
        depth = MAX_GROUP_DEPTH if self._config.nested_groups else 1
        for _ in range(depth):
            next_frontier: list[str] = []
            for dn in frontier:
                for group_dn, name in members_of(dn):
                    key = group_dn.lower()
                    if key in seen or len(seen) >= MAX_GROUPS:
                        continue
                    seen.add(key)
                    names[name] = None
                    next_frontier.append(group_dn)
            if not next_frontier:
                break
            frontier = next_frontier
        return tuple(sorted(names))

    def _identity(self, conn: Connection, entry: _Entry, username: str,
                  ppolicy: ldap_state.PpolicyResponse | None = None) -> Identity | None:
        subject = _subject(entry, self._attrs.subject)
        if subject is None:
            log.warning("LDAP entry `%s` has no `%s`: refused", entry.dn, self._attrs.subject)
            return None
        attributes = {k: v for k, v in (("email", entry.first(self._attrs.email)),
                                         ("name", entry.first(self._attrs.name))) if v}
        return Identity(username=entry.first(self._attrs.username) or username, subject=subject,
                        groups=self._groups(conn, entry), attributes=attributes, dn=entry.dn,
                        status=ldap_state.status(entry.first, ppolicy))

    # -- the Directory protocol ----------------------------------------------------------

    def authenticate(self, username: str, password: str) -> Identity:
        """Search, then bind (RFC 4513 §5.1.3).

        An empty password is refused before any bind: it would make an unauthenticated bind,
        which servers may answer with success (RFC 4513 §5.1.2).
        """
        if not password or len(password) > MAX_PASSWORD or not valid_username(username):
            raise AuthenticationFailed(debug="empty, over-long or malformed credentials")
        started = time.perf_counter()
        try:
            return self._authenticate(username, password)
        finally:
            metrics.backend_latency("directory", "authenticate", time.perf_counter() - started)

    def _authenticate(self, username: str, password: str) -> Identity:
        entry = self._service(lambda c: self._find_user(c, username))
        # An unknown user still costs a bind, to a DN that cannot exist: similar timing.
        dn = entry.dn if entry is not None else (
            f"{self._attrs.username}=idp-no-such-user-{secrets.token_hex(8)},"
            f"{self._config.user_base_dn}")
        bound, message, ppolicy = self._user_bind(dn, password)
        if not bound or entry is None:
            reason = None
            if entry is not None:
                # a locked account's bind is refused whatever the password: the audit says
                # why, the entry's own state (an administrator's lock is a disabling) first
                reason = (ldap_state.refusal(entry.first) or ppolicy.error
                          or ldap_state.reason_from_bind_message(message))
            if reason is not None:
                raise AccountRefused(reason, debug=f"`{username}`: {reason} (bind refused)")
            raise AuthenticationFailed(debug=f"bind refused or no single entry for `{username}`")
        reason = ldap_state.refusal(entry.first)
        if reason is not None:
            raise AccountRefused(reason, debug=f"`{username}`: {reason}")
        identity = self._service(lambda c: self._identity(c, entry, username, ppolicy))
        if identity is None:
            raise AuthenticationFailed(debug=f"`{username}` has no subject attribute")
        return identity

    def change_password(self, username: str, current: str, new: str) -> None:
        """Bound as the person: Password Modify (RFC 3062 §2) on OpenLDAP, or a ``unicodePwd``
        delete-and-add on Active Directory (``password_change: ad_unicode_pwd``, LDAPS only;
        MS-ADTS §3.1.1.3.1.5.2).  The server's refusal (ppolicy's "password is in history",
        AD's complexity) is a :class:`PasswordRejected` with its own words."""
        self.authenticate(username, current)
        entry = self._service(lambda c: self._find_user(c, username))
        if entry is None:
            raise AuthenticationFailed(debug=f"`{username}` vanished during a password change")
        conn = self._open(entry.dn, current)
        try:
            conn.read_only = False
            if not conn.bind():
                raise AuthenticationFailed(debug=f"bind as `{username}` refused")
            if self._config.password_change == "ad_unicode_pwd":
                ok = conn.modify(entry.dn, ad_password_change(current, new))
            else:
                ok = conn.extend.standard.modify_password(entry.dn, current, new)
            result = conn.result
        except (LDAPException, OSError) as exc:
            raise _down(f"password change: {type(exc).__name__}") from exc
        finally:
            _quietly_close(conn)
        _password_written(ok, result, "password change")

    @property
    def can_reset(self) -> bool:
        """Whether forgot password may set passwords here (``password_reset``)."""
        return self._config.password_reset

    def find_by_email(self, email: str) -> Identity | None:
        """The one person whose e-mail attribute is ``email`` (RFC 4515 escaped) and who may
        sign in, for forgot password; ``None`` otherwise."""
        if not email or len(email) > 256:
            return None
        a = self._attrs
        flt = f"(&{self._user_filter}({a.email}={escape_filter_value(email)}))"
        wanted = [a.username, a.subject, a.email, a.name, *ldap_state.STATE_ATTRIBUTES]
        if self._config.group_search is None:
            wanted.append(a.member_of)

        def op(conn: Connection) -> Identity | None:
            found = self._search(conn, self._config.user_base_dn, flt, SUBTREE, wanted,
                                 size_limit=2)
            if len(found) != 1 or ldap_state.refusal(found[0].first) is not None:
                return None
            username = found[0].first(a.username)
            if username is None or not valid_username(username):
                return None
            return self._identity(conn, found[0], username)

        return self._service(op)

    def reset_password(self, username: str, new: str) -> None:
        """Set a forgotten password with the service account: Password Modify without the
        old password (RFC 3062 §2: the server may allow it to a privileged identity), or a
        replace of ``unicodePwd`` on Active Directory (MS-ADTS §3.1.1.3.1.5.2, an
        administrative reset).  The server's refusal is a :class:`PasswordRejected`."""
        if not self._config.password_reset:
            raise PasswordRejected(["this directory does not take password resets"])
        entry = self._service(lambda c: self._find_user(c, username))
        if entry is None:
            raise PasswordRejected(["this link has expired or was already used"],
                                   debug=f"`{username}` vanished before the reset")
        conn = self._open(self._config.bind_dn, self._config.bind_password)
        try:
            conn.read_only = False
            if not conn.bind():
                raise _down(f"service bind for a reset: {conn.result.get('description')}")
            if self._config.password_change == "ad_unicode_pwd":
                ok = conn.modify(entry.dn, {"unicodePwd": [(MODIFY_REPLACE,
                                                            [ad_password_value(new)])]})
            else:
                ok = conn.extend.standard.modify_password(entry.dn, None, new)
            result = conn.result
        except (LDAPException, OSError) as exc:
            raise _down(f"password reset: {type(exc).__name__}") from exc
        finally:
            _quietly_close(conn)
        _password_written(ok, result, "password reset")

    def lookup(self, username: str) -> Identity | None:
        if not valid_username(username):
            return None

        def op(conn: Connection) -> Identity | None:
            entry = self._find_user(conn, username)
            if entry is None or ldap_state.refusal(entry.first) is not None:
                return None  # gone, disabled, locked or expired: no refresh, no session
            return self._identity(conn, entry, username)

        started = time.perf_counter()
        try:
            return self._service(op)
        finally:
            metrics.backend_latency("directory", "lookup", time.perf_counter() - started)

    def ping(self) -> None:
        """A "Who am I?" (RFC 4532) on a pooled connection."""

        def op(conn: Connection) -> None:
            conn.extend.standard.who_am_i()
            if conn.result.get("result") != _SUCCESS:
                raise _down(f"whoami: {conn.result.get('description')}")

        self._service(op)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _quietly_close(conn)


def ad_password_change(current: str, new: str) -> dict[str, list[tuple[str, list[bytes]]]]:
    """The modify changes of an Active Directory password change by the person
    (MS-ADTS §3.1.1.3.1.5.2): delete the old ``unicodePwd`` and add the new one, each the
    password in double quotes, encoded UTF-16LE."""
    from ldap3 import MODIFY_ADD, MODIFY_DELETE

    return {"unicodePwd": [(MODIFY_DELETE, [ad_password_value(current)]),
                           (MODIFY_ADD, [ad_password_value(new)])]}


def ad_password_value(password: str) -> bytes:
    """A ``unicodePwd`` value: the password in double quotes, UTF-16LE (MS-ADTS
    §3.1.1.3.1.5.2)."""
    return f'"{password}"'.encode("utf-16-le")


def _password_written(ok: bool, result: dict[str, Any], what: str) -> None:
    """The directory's answer to a password write: a busy or unreachable server is an outage
    (503), any other refusal is shown to the person in the server's own words."""
    if ok:
        return
    if result.get("result") in _UNAVAILABLE:
        raise _down(f"{what}: {result.get('description')}")
    said = str(result.get("message") or result.get("description") or "refused")
    raise PasswordRejected([f"the directory refused the new password: {said}"], debug=said)


def _quietly_close(conn: Any) -> None:
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass
