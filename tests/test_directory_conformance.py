"""One conformance suite for every :class:`idp.directory.Directory` backend (STYLE.md §2).

The same cases run, unchanged, against the file directory and a real slapd (memberOf groups,
memberOf with nested groups, and a group search with nested groups).  Then come the few cases
only one backend can have (TLS, file reload) and the ``idp users`` CLI.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
import pytest
import yaml
from argon2 import PasswordHasher
from click.testing import CliRunner

from idp.directory import MAX_PASSWORD, MAX_USERNAME, Directory, Identity
from idp.directory.cli import users as users_cli
from idp.directory.file import FileDirectory, FileUser, add_user, list_users, write_users
from idp.directory.ldap import (
    LdapDirectory,
    _Entry,
    _subject,
    escape_filter_value,
    group_name_from_dn,
)
from idp.errors import AuthenticationFailed, ConfigError, DirectoryUnavailable
from tests.fixtures.servers import free_port
from tests.fixtures.slapd import Slapd

# -- the people every backend knows (tests/fixtures/ldap/test.ldif) --------------------------


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    groups: frozenset[str]
    nested_groups: frozenset[str]
    email: str
    name: str


def _p(username: str, password: str, groups: set[str], nested: set[str], email: str,
       name: str) -> Person:
    return Person(username, password, frozenset(groups), frozenset(groups | nested), email, name)


PEOPLE = {p.username: p for p in [
    _p("alice", "alice-password", {"admins", "engineering"}, set(), "alice@example.org",
       "Alice Liddell"),
    _p("bob", "bob-password", {"engineering"}, set(), "bob@example.org", "Bob Builder"),
    _p("carol", "carol-password", set(), set(), "carol@example.org", "Carol Danvers"),
    _p("dave", "dave-password", {"platform"}, {"engineering"}, "dave@example.org", "Dave Lister"),
    _p("erin", "erin-password", {"cycle-a"}, {"cycle-b"}, "erin@example.org", "Erin Loop"),
    _p("o'brien", "obrien-password", set(), set(), "obrien@example.org", "Miles O'Brien"),
    _p("star*user", "star-password", set(), set(), "star@example.org", "Star User"),
]}
ALICE = PEOPLE["alice"]


# -- backends ---------------------------------------------------------------------------------


@dataclass
class Backend:
    """A directory under test plus a spy on its credential work."""

    name: str
    directory: Directory
    nested: bool
    make_down: Callable[[], Directory]
    checks: list[str] = field(default_factory=list)  # password checks: hash verify / user bind
    work: list[str] = field(default_factory=list)  # every verify or bind, service binds too
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def users_file_data() -> dict[str, Any]:
    """The people as a users file (hashed once per session: argon2id is slow on purpose)."""
    ph = PasswordHasher()
    return {"users": [
        FileUser(p.username, f"00000000-0000-4000-8000-{i:012d}", ph.hash(p.password),
                 tuple(sorted(p.groups)), p.email, p.name).to_yaml()
        for i, p in enumerate(PEOPLE.values())
    ]}


def _fast_clock() -> Callable[[], float]:
    """A clock that jumps 10 s per reading: every call re-checks the users file."""
    ticks = itertools.count(0, 10)
    return lambda: float(next(ticks))


def _file_backend(tmp_path: Path, data: dict[str, Any], mp: pytest.MonkeyPatch) -> Backend:
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(data))

    def make_down() -> Directory:
        gone = tmp_path / "gone.yaml"
        gone.write_text(yaml.safe_dump(data))
        d = FileDirectory(gone, clock=_fast_clock())
        gone.unlink()
        return d

    backend = Backend("file", FileDirectory(path), nested=False, make_down=make_down)
    verify = PasswordHasher.verify

    def spy(self: PasswordHasher, pw_hash: str | bytes, password: str | bytes) -> bool:
        backend.checks.append("verify")
        backend.work.append("verify")
        return verify(self, pw_hash, password)

    mp.setattr(PasswordHasher, "verify", spy)
    return backend


def _ldap_backend(name: str, slapd: Slapd, mp: pytest.MonkeyPatch, **cfg: Any) -> Backend:
    def make_down() -> Directory:
        return LdapDirectory(slapd.ldap_config(url=f"ldap://127.0.0.1:{free_port()}",
                                               timeout=1.0))

    backend = Backend(name, LdapDirectory(slapd.ldap_config(**cfg)),
                      nested=bool(cfg.get("nested_groups")), make_down=make_down)
    bind = ldap3.Connection.bind

    def spy(self: ldap3.Connection, *args: Any, **kwargs: Any) -> Any:
        backend.work.append(str(self.user))
        if self.user != slapd.bind_dn:
            backend.checks.append(str(self.user))
            backend.extra.setdefault("user_conns", []).append(self)
        return bind(self, *args, **kwargs)

    mp.setattr(ldap3.Connection, "bind", spy)
    return backend


BACKENDS = [
    pytest.param("file", id="file"),
    pytest.param("ldap-memberof", id="ldap-memberof", marks=pytest.mark.slapd),
    pytest.param("ldap-memberof-nested", id="ldap-memberof-nested", marks=pytest.mark.slapd),
    pytest.param("ldap-groupsearch-nested", id="ldap-groupsearch-nested",
                 marks=pytest.mark.slapd),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            users_file_data: dict[str, Any]) -> Iterator[Backend]:
    name: str = request.param
    if name == "file":
        b = _file_backend(tmp_path, users_file_data, monkeypatch)
    else:
        slapd: Slapd = request.getfixturevalue("slapd")
        cfg: dict[str, Any] = {"nested_groups": name.endswith("-nested")}
        if "groupsearch" in name:
            cfg["group_search"] = {"base_dn": slapd.groups_dn}
        b = _ldap_backend(name, slapd, monkeypatch, **cfg)
    yield b
    b.directory.close()


def _fails(directory: Directory, username: str, password: str) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        directory.authenticate(username, password)
    return info.value


# -- the conformance cases --------------------------------------------------------------------


@pytest.mark.parametrize("person", [pytest.param(p, id=p.username) for p in PEOPLE.values()])
def test_right_password_gives_identity(backend: Backend, person: Person) -> None:
    identity = backend.directory.authenticate(person.username, person.password)
    assert isinstance(identity, Identity)
    assert identity.username == person.username
    assert identity.subject
    assert identity.email == person.email
    assert identity.display_name == person.name
    expected = person.nested_groups if backend.nested else person.groups
    assert set(identity.groups) == expected
    assert len(identity.groups) == len(set(identity.groups)), "no duplicate groups"


REJECTED = [
    pytest.param("alice", "bob-password", id="wrong password"),
    pytest.param("alice", "Alice-password", id="password case differs"),
    pytest.param("alice", "alice-password ", id="password with trailing space"),
    pytest.param("mallory", "alice-password", id="unknown user"),
    pytest.param("alice", "", id="empty password (unauthenticated bind, RFC 4513 5.1.2)"),
    pytest.param("*)(uid=*))(|(uid=*", "alice-password", id="filter injection closing and OR"),
    pytest.param("admin)(&)", "alice-password", id="filter injection absolute true"),
    pytest.param("*", "alice-password", id="wildcard matches everyone"),
    pytest.param("ali*", "alice-password", id="wildcard prefix would match alice"),
    pytest.param("star*", "star-password", id="wildcard prefix would match star*user"),
    pytest.param("alice)(uid=*", "alice-password", id="filter injection extra component"),
    pytest.param("alice\x00", "alice-password", id="NUL terminates the username"),
    pytest.param("alice\x00garbage", "alice-password", id="NUL in the middle"),
    pytest.param("alice\\", "alice-password", id="trailing backslash"),
    pytest.param(" alice", "alice-password", id="leading space"),
    pytest.param("alice\n", "alice-password", id="trailing newline"),
    pytest.param("a" * (MAX_USERNAME + 1), "alice-password", id="over-long username"),
    pytest.param("alice", "alice-password" + "x" * MAX_PASSWORD, id="over-long password"),
    pytest.param("", "alice-password", id="empty username"),
    pytest.param("o'brien", "alice-password", id="special-character uid wrong password"),
]


@pytest.mark.parametrize(("username", "password"), REJECTED)
def test_rejected_with_one_answer(backend: Backend, username: str, password: str) -> None:
    exc = _fails(backend.directory, username, password)
    assert (exc.code, exc.description, exc.status) == (
        "invalid_credentials", "invalid username or password", 401)


def test_unknown_user_and_wrong_password_look_the_same(backend: Backend) -> None:
    wrong = _fails(backend.directory, "alice", "not-her-password")
    unknown = _fails(backend.directory, "nobody-at-all", "not-her-password")
    assert type(wrong) is type(unknown)
    assert (str(wrong), wrong.code, wrong.status) == (str(unknown), unknown.code, unknown.status)


def test_unknown_user_still_costs_one_password_check(backend: Backend) -> None:
    """Similar timing: a dummy hash or a bind to a DN that cannot exist."""
    backend.checks.clear()
    _fails(backend.directory, "nobody-at-all", "some-password")
    assert len(backend.checks) == 1
    assert "nobody-at-all" not in backend.checks[0]


@pytest.mark.parametrize(("username", "password"), [
    pytest.param("alice", "", id="empty password"),
    pytest.param("alice", "x" * (MAX_PASSWORD + 1), id="over-long password"),
    pytest.param("alice\x00", "alice-password", id="NUL in username"),
    pytest.param("a" * (MAX_USERNAME + 1), "alice-password", id="over-long username"),
])
def test_refused_before_any_bind_or_hash(backend: Backend, username: str, password: str) -> None:
    _fails(backend.directory, username, password)
    assert backend.work == [], "no bind and no hash verification may happen"


@pytest.mark.parametrize("person", [pytest.param(p, id=p.username) for p in PEOPLE.values()])
def test_lookup_known(backend: Backend, person: Person) -> None:
    found = backend.directory.lookup(person.username)
    assert found is not None
    assert found.username == person.username
    assert set(found.groups) == (person.nested_groups if backend.nested else person.groups)
    assert found.subject == backend.directory.authenticate(person.username,
                                                           person.password).subject
    assert backend.directory.lookup(person.username) == found, "subject is stable"


@pytest.mark.parametrize("username", [
    pytest.param("mallory", id="unknown"),
    pytest.param("*", id="wildcard"),
    pytest.param("ali*", id="wildcard prefix"),
    pytest.param("*)(uid=*))(|(uid=*", id="filter injection"),
    pytest.param("alice\x00", id="NUL"),
    pytest.param("", id="empty"),
    pytest.param("a" * (MAX_USERNAME + 1), id="over-long"),
])
def test_lookup_unknown(backend: Backend, username: str) -> None:
    assert backend.directory.lookup(username) is None


def test_ping(backend: Backend) -> None:
    assert isinstance(backend.directory, Directory)
    backend.directory.ping()


@pytest.mark.parametrize("username", [
    pytest.param("ALICE", id="upper case"),
    pytest.param("Alice", id="capitalised"),
])
def test_username_case_is_ignored_like_ldap_uid(backend: Backend, username: str) -> None:
    """``uid`` matches with caseIgnoreMatch (RFC 4519 §2.39); the canonical name comes back."""
    assert backend.directory.authenticate(username, "alice-password").username == "alice"
    found = backend.directory.lookup(username)
    assert found is not None and found.username == "alice"


def test_concurrent_logins_share_the_pool(backend: Backend) -> None:
    names = ["alice", "bob", "carol", "dave"] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        found = list(pool.map(
            lambda n: backend.directory.authenticate(n, PEOPLE[n].password).username, names))
    assert found == names


def test_unavailable_backend_fails_fast(backend: Backend) -> None:
    down = backend.make_down()
    try:
        start = time.monotonic()
        with pytest.raises(DirectoryUnavailable):
            down.authenticate("alice", "alice-password")
        with pytest.raises(DirectoryUnavailable):
            down.ping()
        with pytest.raises(DirectoryUnavailable):
            down.lookup("alice")
        assert time.monotonic() - start < 5
    finally:
        down.close()


# -- LDAP only --------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "escaped"), [
    pytest.param("alice", "alice", id="plain"),
    pytest.param("*", r"\2a", id="asterisk"),
    pytest.param("a(b)c", r"a\28b\29c", id="parentheses"),
    pytest.param("back\\slash", r"back\5cslash", id="backslash"),
    pytest.param("nul\x00", r"nul\00", id="NUL"),
    pytest.param("*)(uid=*))(|(uid=*", r"\2a\29\28uid=\2a\29\29\28|\28uid=\2a", id="injection"),
    pytest.param("o'brien é", "o'brien é", id="quote and non-ASCII kept"),
])
def test_filter_escaping_rfc4515(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped


@pytest.mark.parametrize(("dn", "name"), [
    pytest.param("cn=admins,ou=groups,dc=example,dc=org", "admins", id="cn"),
    pytest.param("CN=Domain Users,CN=Users,DC=corp,DC=example", "Domain Users", id="AD style"),
    pytest.param(r"cn=R\2CD,ou=groups,dc=x", "R,D", id="hex escaped comma"),
    pytest.param(r"cn=a\+b,ou=groups,dc=x", "a+b", id="escaped plus"),
    pytest.param(r"cn=caf\C3\A9,dc=x", "café", id="escaped UTF-8"),
])
def test_group_name_from_dn(dn: str, name: str) -> None:
    assert group_name_from_dn(dn) == name


def test_object_guid_is_a_uuid() -> None:
    guid = bytes(range(16))
    entry = _Entry("cn=x", {"objectguid": [guid]})
    assert _subject(entry, "objectGUID") == "03020100-0504-0706-0809-0a0b0c0d0e0f"


@pytest.mark.slapd
def test_user_bind_never_lands_in_the_pool(slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _ldap_backend("ldap", slapd, monkeypatch)
    directory = backend.directory
    assert isinstance(directory, LdapDirectory)
    for name in ["alice", "bob", "alice"]:
        directory.authenticate(name, PEOPLE[name].password)
    user_conns = backend.extra["user_conns"]
    assert len(user_conns) == 3
    assert all(c.closed for c in user_conns)
    pooled = directory._idle
    assert pooled and all(c.user == slapd.bind_dn for c in pooled)
    assert not any(c in user_conns for c in pooled)
    directory.close()


@pytest.mark.slapd
def test_users_can_only_bind(slapd: Slapd) -> None:
    """The fixture's ACL: a user's own bind reads nothing (the service account does)."""
    with ldap3.Connection(slapd.url, "uid=alice,ou=people,dc=example,dc=org",
                          "alice-password", auto_bind=True) as conn:
        conn.search(slapd.base_dn, "(uid=*)", attributes=["uid"])
        assert conn.entries == []


@pytest.mark.slapd
def test_wrong_service_password_is_unavailable(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.ldap_config(bind_password="wrong"))
    with pytest.raises(DirectoryUnavailable) as info:
        directory.ping()
    assert "wrong" not in info.value.debug
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate("alice", "alice-password")


def test_silent_server_is_bounded_by_timeout() -> None:
    """A peer that accepts TCP but never answers LDAP: DirectoryUnavailable after ~timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        from idp.config import LdapConfig

        directory = LdapDirectory(LdapConfig(
            url=f"ldap://127.0.0.1:{port}", bind_dn="cn=x", bind_password="x",
            user_base_dn="dc=x", timeout=0.5))
        start = time.monotonic()
        with pytest.raises(DirectoryUnavailable):
            directory.authenticate("alice", "alice-password")
        assert time.monotonic() - start < 3


@pytest.mark.slapd
def test_second_url_is_used_when_the_first_is_down(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.ldap_config(
        url=f"ldap://127.0.0.1:{free_port()} {slapd.url}"))
    assert directory.authenticate("bob", "bob-password").groups == ("engineering",)
    directory.close()


def _tls_cases(slapd: Slapd) -> dict[str, dict[str, Any]]:
    localhost = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    return {
        "starttls with CA": {"start_tls": True, "ca_file": slapd.ca_file},
        "ldaps with CA": {"url": slapd.ldaps_url, "ca_file": slapd.ca_file},
        "ldaps unverified": {"url": slapd.ldaps_url, "verify_tls": False},
        "starttls unknown CA": {"start_tls": True},
        "ldaps unknown CA": {"url": slapd.ldaps_url},
        "ldaps name mismatch": {"url": localhost, "ca_file": slapd.ca_file},
    }


@pytest.mark.slapd
@pytest.mark.parametrize(("case", "refusal"), [
    pytest.param("starttls with CA", None, id="starttls with CA"),
    pytest.param("ldaps with CA", None, id="ldaps with CA"),
    pytest.param("ldaps unverified", None, id="ldaps verify_tls false"),
    pytest.param("starttls unknown CA", "CERTIFICATE_VERIFY_FAILED",
                 id="starttls untrusted certificate"),
    pytest.param("ldaps unknown CA", "CERTIFICATE_VERIFY_FAILED",
                 id="ldaps untrusted certificate"),
    pytest.param("ldaps name mismatch", "doesn't match any name",
                 id="ldaps certificate for another name"),
])
def test_tls(slapd: Slapd, case: str, refusal: str | None) -> None:
    """LDAPS and StartTLS (RFC 4513 §3) verify the certificate and its name by default."""
    directory = LdapDirectory(slapd.ldap_config(**_tls_cases(slapd)[case]))
    try:
        if refusal is None:
            assert directory.authenticate("alice", "alice-password").username == "alice"
            directory.ping()
        else:
            with pytest.raises(DirectoryUnavailable) as info:
                directory.authenticate("alice", "alice-password")
            assert refusal in info.value.debug
            assert "alice-password" not in info.value.debug
    finally:
        directory.close()


@pytest.mark.slapd
def test_stale_pooled_connection_is_replaced(slapd: Slapd) -> None:
    """A pooled connection the server dropped (idle timeout, restart) is retried once."""
    directory = LdapDirectory(slapd.ldap_config())
    directory.ping()
    for conn in directory._idle:
        conn.socket.shutdown(socket.SHUT_RDWR)
    assert directory.authenticate("alice", "alice-password").username == "alice"
    directory.close()


# -- file only --------------------------------------------------------------------------------


def _user(username: str, password: str, **kw: Any) -> dict[str, Any]:
    return FileUser(username, f"id-{username}", PasswordHasher().hash(password), **kw).to_yaml()


def test_file_reloads_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    write_users(path, [])
    now = [0.0]
    directory = FileDirectory(path, clock=lambda: now[0])
    assert directory.lookup("zoe") is None
    add_user(path, "zoe", "amber-lantern-9", ["ops"])
    now[0] += 0.5
    assert directory.lookup("zoe") is None, "at most one stat a second"
    now[0] += 1.0
    assert directory.authenticate("zoe", "amber-lantern-9").groups == ("ops",)


def test_file_disabled_user_fails_like_a_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": [_user("zoe", "amber-lantern-9", disabled=True)]}))
    directory = FileDirectory(path)
    exc = _fails(directory, "zoe", "amber-lantern-9")
    assert exc.description == AuthenticationFailed().description
    assert directory.lookup("zoe") is None


@pytest.mark.parametrize(("content", "problem"), [
    pytest.param("users: [{username: zoe}]", "password_hash", id="missing hash"),
    pytest.param("users: [{username: zoe, id: z, password_hash: '$2b$12$x'}]", "argon2id",
                 id="bcrypt hash refused"),
    pytest.param("users: [{username: zoe, id: z, password_hash: '$argon2id$x', admin: true}]",
                 "unknown key `admin`", id="unknown key"),
    pytest.param("users: {zoe: 1}", "must be a list", id="users not a list"),
    pytest.param("users: [", "not valid YAML", id="broken YAML"),
])
def test_file_invalid_at_start(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        FileDirectory(path)
    assert problem in info.value.description


def test_file_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text("users: [{username: ' a'}, {username: b, id: b, password_hash: x}]")
    with pytest.raises(ConfigError) as info:
        FileDirectory(path)
    assert len(info.value.problems) >= 4


def test_file_broken_at_runtime_denies_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    good = yaml.safe_dump({"users": [_user("zoe", "amber-lantern-9")]})
    path.write_text(good)
    directory = FileDirectory(path, clock=_fast_clock())
    path.write_text("users: [")
    with pytest.raises(DirectoryUnavailable):
        directory.authenticate("zoe", "amber-lantern-9")
    path.write_text(good + "\n")
    assert directory.authenticate("zoe", "amber-lantern-9").username == "zoe"


def test_file_old_hash_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("amber-lantern-9")
    path.write_text(yaml.safe_dump({"users": [
        {"username": "zoe", "id": "z", "password_hash": weak}]}))
    before = path.read_bytes()
    FileDirectory(path).authenticate("zoe", "amber-lantern-9")
    assert path.read_bytes() == before


def test_file_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    user = add_user(path, "zoe", "amber-lantern-9", ["ops", "ops"], "zoe@example.org", "Zoe")
    assert os.stat(path).st_mode & 0o777 == 0o600
    # no temporary file left behind; the (empty, 0600) lock file of the writers stays
    assert sorted(p.name for p in tmp_path.iterdir()) == [".users.yaml.lock", "users.yaml"]
    lock = tmp_path / ".users.yaml.lock"
    assert lock.stat().st_size == 0 and os.stat(lock).st_mode & 0o777 == 0o600
    assert user.groups == ("ops",)
    assert list_users(path) == [user]
    with pytest.raises(ConfigError, match="already exists"):
        add_user(path, "zoe", "another-amber-lantern")


def test_demo_users_file() -> None:
    directory = FileDirectory(Path(__file__).parents[1] / "idp" / "demo" / "users.yaml")
    for name in ["alice", "bob", "carol"]:
        identity = directory.authenticate(name, f"{name}-password")
        assert set(identity.groups) == PEOPLE[name].groups
    assert directory.authenticate("alice", "alice-password").display_name == "Alice Liddell"


def test_concurrent_reload_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    write_users(path, [])
    directory = FileDirectory(path, clock=_fast_clock())
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            path.write_text("users: []\n" if time.monotonic() % 2 else "users:\n")

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _ in range(200):
            try:
                assert directory.lookup("zoe") is None
            except DirectoryUnavailable:
                pass  # a half-written file is refused, never half-read into users
    finally:
        stop.set()
        writer.join()


# -- the `idp users` CLI ----------------------------------------------------------------------


def test_cli_add_list_passwd(tmp_path: Path) -> None:
    path = str(tmp_path / "users.yaml")
    runner = CliRunner()
    added = runner.invoke(users_cli, ["add", "zoe", "--group", "ops", "--group", "admins",
                                      "--email", "zoe@example.org", "--name", "Zoe Z",
                                      "--password-stdin", "--file", path],
                          input="amber-lantern-9\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(users_cli, ["list", "--file", path])
    assert listed.exit_code == 0
    assert "zoe" in listed.output and "ops,admins" in listed.output
    identity = FileDirectory(Path(path)).authenticate("zoe", "amber-lantern-9")
    assert identity.groups == ("ops", "admins") and identity.display_name == "Zoe Z"

    changed = runner.invoke(users_cli, ["passwd", "zoe", "--password-stdin", "--file", path],
                            input="second-amber-lantern\n")
    assert changed.exit_code == 0, changed.output
    directory = FileDirectory(Path(path))
    _fails(directory, "zoe", "amber-lantern-9")
    assert directory.authenticate("zoe", "second-amber-lantern").subject == identity.subject


def test_cli_prompts_twice(tmp_path: Path) -> None:
    path = str(tmp_path / "users.yaml")
    result = CliRunner().invoke(users_cli, ["add", "zoe", "--file", path],
                                input="amber-lantern-9\namber-lantern-9\n")
    assert result.exit_code == 0, result.output
    assert "amber-lantern-9" not in result.output, "hidden input"
    assert FileDirectory(Path(path)).authenticate("zoe", "amber-lantern-9").groups == ()


def test_cli_uses_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "idp.yaml"
    config.write_text(yaml.safe_dump({
        "issuer": "https://idp.example.org", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": "people.yaml"}}}))
    result = CliRunner().invoke(users_cli, ["add", "zoe", "--password-stdin",
                                            "--config", str(config)], input="amber-lantern-9\n")
    assert result.exit_code == 0, result.output
    assert [u.username for u in list_users(tmp_path / "people.yaml")] == ["zoe"]


@pytest.mark.parametrize(("args", "stdin", "code", "message"), [
    pytest.param(["add", "zoe", "--password-stdin"], "pw\n", 2, "--file", id="no file given"),
    pytest.param(["add", "zoe", "--password-stdin", "--file", "F"], "\n", 1,
                 "must not be empty", id="empty password"),
    pytest.param(["add", "bad\tname", "--password-stdin", "--file", "F"], "pw\n", 1,
                 "invalid username", id="control character in username"),
    pytest.param(["add", "alice", "--password-stdin", "--file", "F"], "amber-lantern-9\n", 1,
                 "already exists", id="duplicate user"),
    pytest.param(["passwd", "nobody", "--password-stdin", "--file", "F"], "amber-lantern-9\n", 1,
                 "no user `nobody`", id="passwd unknown user"),
])
def test_cli_errors(tmp_path: Path, args: list[str], stdin: str, code: int,
                    message: str) -> None:
    path = tmp_path / "users.yaml"
    write_users(path, [FileUser("alice", "a", PasswordHasher().hash("alice-password"))])
    args = [str(path) if a == "F" else a for a in args]
    result = CliRunner().invoke(users_cli, args, input=stdin)
    assert result.exit_code == code
    assert message in result.output


def test_concurrent_cli_adds_all_land(tmp_path: Path) -> None:
    """Lost update: six `idp users add` processes started together (each hashes, then reads,
    appends and replaces the file) must leave six users, not the last writer's view."""
    import subprocess
    import sys

    idp = str(Path(sys.executable).parent / "idp")
    path = str(tmp_path / "users.yaml")
    procs = [subprocess.Popen([idp, "users", "add", f"user{i}", "--password-stdin", "--file",
                               path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for i in range(6)]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"amber-lantern-orbit\n")
        p.stdin.close()
    for p in procs:
        assert p.wait(120) == 0, p.stdout.read() if p.stdout else ""
    assert sorted(u.username for u in list_users(Path(path))) == [f"user{i}" for i in range(6)]


@pytest.mark.parametrize(("stored", "typed"), [
    pytest.param("caf\u00e9-password", "cafe\u0301-password", id="NFC stored, NFD typed"),
    pytest.param("cafe\u0301-password", "caf\u00e9-password", id="NFD stored, NFC typed"),
    pytest.param("two\u00a0words-pass", "two words-pass", id="no-break space as space"),
    pytest.param("two\u3000words-pass", "two words-pass", id="ideographic space as space"),
])
def test_file_password_in_another_unicode_form_is_the_same_password(
        tmp_path: Path, stored: str, typed: str) -> None:
    """RFC 8265 §4.2.2 (OpaqueString): non-ASCII spaces map to U+0020 and the password is
    NFC-normalized before hashing and before checking, so the keyboard's choice of form
    does not lock a person out; a different password still fails."""
    path = tmp_path / "users.yaml"
    write_users(path, [])
    add_user(path, "zoe", stored)
    directory = FileDirectory(path)
    assert directory.authenticate("zoe", typed).username == "zoe"
    _fails(directory, "zoe", typed.replace("pass", "Pass"))


def test_file_hash_of_an_unprepared_password_still_signs_in(tmp_path: Path) -> None:
    """A hash written before passwords were prepared (of the NFD form as typed) still
    accepts that exact password."""
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": [_user("zoe", "cafe\u0301-password")]}))
    directory = FileDirectory(path)
    assert directory.authenticate("zoe", "cafe\u0301-password").username == "zoe"
    _fails(directory, "zoe", "cafe-password")
