"""Account states and password changes against a real slapd with the ppolicy overlay
(draft-behera-ldap-password-policy-11): locked, disabled by an administrator, reset (must
change), expiring with a warning, expired with grace logins, and the RFC 3062 Password
Modify with the server's own refusal in words."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from idp.config import Config, parse_config
from idp.directory import ldap_state
from idp.directory.ldap import LdapDirectory
from idp.errors import AccountRefused, AuthenticationFailed, PasswordRejected
from tests.fixtures.live import live_idp
from tests.fixtures.servers import free_port
from tests.fixtures.slapd import Slapd
from tests.oidc import rp
from tests.security.roles import arn, claims_of
from tests.security.test_next_token import CLI, refresh
from tests.sts.live import sts_client


def _modify(slapd: Slapd, ldif: str) -> None:
    """An administrator's change, with the Relax Rules control (draft-zeilenga-ldap-relax)
    for ppolicy's operational attributes."""
    done = subprocess.run(["ldapmodify", "-x", "-H", slapd.url, "-D", slapd.admin_dn, "-w",
                           slapd.admin_password, "-e", "relax"], input=ldif, text=True,
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def _reset(slapd: Slapd, uid: str, password: str) -> None:
    """An administrator sets the password: ppolicy's pwdMustChange marks it pwdReset."""
    done = subprocess.run(["ldappasswd", "-x", "-H", slapd.url, "-D", slapd.admin_dn, "-w",
                           slapd.admin_password, "-s", password,
                           f"uid={uid},{slapd.people_dn}"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def directory(slapd_ppolicy: Slapd) -> LdapDirectory:
    return LdapDirectory(slapd_ppolicy.ldap_config())


def test_ppolicy_locked_after_failures_is_refused_with_the_reason(
        directory: LdapDirectory) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationFailed) as wrong:
            directory.authenticate("lena", "not-her-password")
        assert not isinstance(wrong.value, AccountRefused)
    with pytest.raises(AccountRefused) as info:
        directory.authenticate("lena", "lena-amber-orbit")
    assert info.value.reason == "AccountLocked"
    assert info.value.description == AuthenticationFailed().description
    assert directory.lookup("lena") is None, "a locked person's refresh fails"


def test_ppolicy_disabled_by_administrator_lock(slapd_ppolicy: Slapd,
                                                directory: LdapDirectory) -> None:
    assert directory.lookup("dora") is not None
    _modify(slapd_ppolicy, f"dn: uid=dora,{slapd_ppolicy.people_dn}\nchangetype: modify\n"
                           f"add: pwdAccountLockedTime\npwdAccountLockedTime: "
                           f"{ldap_state.ADMIN_LOCK}\n")
    with pytest.raises(AccountRefused) as info:
        directory.authenticate("dora", "dora-amber-orbit")
    assert info.value.reason == "AccountDisabled"
    assert directory.lookup("dora") is None, "a disabled person's refresh fails"


def test_ppolicy_reset_means_must_change_then_password_modify_clears_it(
        slapd_ppolicy: Slapd, directory: LdapDirectory) -> None:
    _reset(slapd_ppolicy, "rita", "rita-temporary-orbit")
    identity = directory.authenticate("rita", "rita-temporary-orbit")
    assert identity.status.must_change
    directory.change_password("rita", "rita-temporary-orbit", "rita-chosen-lantern")
    assert not directory.authenticate("rita", "rita-chosen-lantern").status.must_change
    with pytest.raises(AuthenticationFailed):
        directory.authenticate("rita", "rita-temporary-orbit")


def test_password_modify_refusal_from_ppolicy_history_in_words(
        directory: LdapDirectory) -> None:
    directory.change_password("dave", "dave-password", "dave-second-lantern")
    with pytest.raises(PasswordRejected) as info:
        directory.change_password("dave", "dave-second-lantern", "dave-password")
    assert "history" in info.value.reasons[0].lower(), info.value.reasons
    directory.change_password("dave", "dave-second-lantern", "dave-third-lantern")


def test_password_modify_with_a_wrong_current_password_changes_nothing(
        directory: LdapDirectory) -> None:
    with pytest.raises(AuthenticationFailed):
        directory.change_password("carol", "not-carol-password", "carol-new-lantern")
    assert directory.authenticate("carol", "carol-password").username == "carol"


def test_ppolicy_expiry_warning_through_the_response_control(
        slapd_ppolicy: Slapd, directory: LdapDirectory) -> None:
    nine_days_ago = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 9 * 86400))
    _modify(slapd_ppolicy, f"dn: uid=ezra,{slapd_ppolicy.people_dn}\nchangetype: modify\n"
                           f"replace: pwdChangedTime\npwdChangedTime: {nine_days_ago}\n")
    status = directory.authenticate("ezra", "ezra-amber-orbit").status
    assert status.expires_in is not None and 86000 < status.expires_in <= 86400
    assert not status.must_change


def test_ppolicy_expired_password_grace_logins_then_refused(
        slapd_ppolicy: Slapd, directory: LdapDirectory) -> None:
    _modify(slapd_ppolicy, f"dn: uid=gina,{slapd_ppolicy.people_dn}\nchangetype: modify\n"
                           "replace: pwdChangedTime\npwdChangedTime: 20000101000000Z\n")
    graces = [directory.authenticate("gina", "gina-amber-orbit").status.grace_logins
              for _ in range(2)]
    assert graces == [1, 0]
    with pytest.raises(AccountRefused) as info:
        directory.authenticate("gina", "gina-amber-orbit")
    assert info.value.reason == "PasswordExpired"


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(bytes.fromhex("3007a0058003093a80"),
                 ldap_state.PpolicyResponse(time_before_expiration=604800),
                 id="time before expiration"),
    pytest.param(bytes.fromhex("3005a0038101 02".replace(" ", "")),
                 ldap_state.PpolicyResponse(grace_remaining=2), id="grace logins"),
    pytest.param(bytes.fromhex("30038101 01".replace(" ", "")),
                 ldap_state.PpolicyResponse(error="AccountLocked"), id="error account locked"),
    pytest.param(bytes.fromhex("3005a0038003"), ldap_state.PpolicyResponse(),
                 id="truncated value is no news"),
    pytest.param(b"", ldap_state.PpolicyResponse(), id="empty value"),
])
def test_ppolicy_response_control_decoding(value: bytes,
                                           expected: ldap_state.PpolicyResponse) -> None:
    assert ldap_state.decode_ppolicy(value) == expected


def _ldap_idp_config(slapd: Slapd, port: int, keys: Path, tmp: Path) -> Config:
    issuer = f"http://127.0.0.1:{port}"
    ldap = slapd.ldap_config().model_dump(mode="json", exclude_none=True)
    return parse_config({
        "issuer": issuer, "secret_key": "s" * 40, "store": {"url": "memory://"},
        "directory": {"type": "ldap", "ldap": ldap},
        "keys": {"dir": str(keys), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(tmp / "metadata")],
        "iam": {"accounts": [{"id": "111122223333"}],
                "oidc_providers": [{"url": issuer, "client_ids": ["demo-cli"]}],
                "roles": [{"name": "Admin"}, {"name": "ReadOnly"}],
                "mapping": [{"role": "ReadOnly", "everyone": True},
                            {"role": "Admin", "groups": ["admins"]}]}})


def test_alice_removed_from_admins_in_slapd_loses_admin_at_the_next_refresh(
        slapd_ppolicy: Slapd, demo_keys_dir: Path, tmp_path: Path) -> None:
    """The refresh grant re-reads the groups from LDAP: the new tokens carry no Admin, and
    AssumeRoleWithWebIdentity to Admin with them is refused."""
    port = free_port()
    with live_idp(_ldap_idp_config(slapd_ppolicy, port, demo_keys_dir, tmp_path), demo=True,
                  port=port) as idp:
        _, first, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="alice")
        assert arn("Admin") in claims_of(first["id_token"])["roles"]
        _modify(slapd_ppolicy, f"dn: cn=admins,{slapd_ppolicy.groups_dn}\nchangetype: modify\n"
                               f"add: member\nmember: uid=dora,{slapd_ppolicy.people_dn}\n-\n"
                               f"delete: member\nmember: uid=alice,{slapd_ppolicy.people_dn}\n")
        r = refresh(idp.url, first["refresh_token"])
        assert r.status_code == 200, r.text
        assert arn("Admin") not in claims_of(r.json()["id_token"])["roles"]
        client = sts_client(idp.url)
        with pytest.raises(client.exceptions.ClientError) as info:
            client.assume_role_with_web_identity(RoleArn=arn("Admin"), RoleSessionName="alice",
                                                 WebIdentityToken=r.json()["id_token"])
        assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_person_locked_in_slapd_cannot_refresh(slapd_ppolicy: Slapd, demo_keys_dir: Path,
                                                tmp_path: Path) -> None:
    port = free_port()
    with live_idp(_ldap_idp_config(slapd_ppolicy, port, demo_keys_dir, tmp_path), demo=True,
                  port=port) as idp:
        _, first, _ = rp.code_flow(idp.url, "demo-cli", CLI, user="erin")
        _modify(slapd_ppolicy, f"dn: uid=erin,{slapd_ppolicy.people_dn}\nchangetype: modify\n"
                               f"add: pwdAccountLockedTime\npwdAccountLockedTime: "
                               f"{ldap_state.ADMIN_LOCK}\n")
        r = refresh(idp.url, first["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
