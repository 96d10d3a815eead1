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

from ldap3 import BASE, NONE, SIMPLE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

from idp import metrics
from idp.config import LdapConfig
from idp.directory import MAX_PASSWORD, Identity, valid_username
from idp.errors import AuthenticationFailed, ConfigError, DirectoryUnavailable

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

    def _user_bind(self, dn: str, password: str) -> bool:
        """Simple bind as ``dn`` on a fresh connection (RFC 4513 §5.1.3); closed right after."""
        conn = self._open(dn, password)
        try:
            if conn.bind():
                return True
            code = conn.result.get("result")
        except (LDAPException, OSError) as exc:
            raise _down(f"user bind: {type(exc).__name__}") from exc
        finally:
            _quietly_close(conn)
        if code in _UNAVAILABLE:
            raise _down(f"user bind: {conn.result.get('description')}")
        return False

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
        wanted = [a.username, a.subject, a.email, a.name]
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

    def _identity(self, conn: Connection, entry: _Entry, username: str) -> Identity | None:
        subject = _subject(entry, self._attrs.subject)
        if subject is None:
            log.warning("LDAP entry `%s` has no `%s`: refused", entry.dn, self._attrs.subject)
            return None
        attributes = {k: v for k, v in (("email", entry.first(self._attrs.email)),
                                         ("name", entry.first(self._attrs.name))) if v}
        return Identity(username=entry.first(self._attrs.username) or username, subject=subject,
                        groups=self._groups(conn, entry), attributes=attributes, dn=entry.dn)

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
        if not self._user_bind(dn, password) or entry is None:
            raise AuthenticationFailed(debug=f"bind refused or no single entry for `{username}`")
        identity = self._service(lambda c: self._identity(c, entry, username))
        if identity is None:
            raise AuthenticationFailed(debug=f"`{username}` has no subject attribute")
        return identity

    def lookup(self, username: str) -> Identity | None:
        if not valid_username(username):
            return None

        def op(conn: Connection) -> Identity | None:
            entry = self._find_user(conn, username)
            return None if entry is None else self._identity(conn, entry, username)

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


def _quietly_close(conn: Any) -> None:
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass
