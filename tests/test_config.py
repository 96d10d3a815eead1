"""Configuration: validated once, every problem reported at once with its path."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from idp.cli import main
from idp.config import load_config, parse_config
from idp.errors import ConfigError

GOOD = """
issuer: https://idp.example.org
secret_key: ${IDP_SECRET}
store:
  url: redis://redis:6379/0
directory:
  type: ldap
  ldap:
    url: ldap://ldap.example.org:389
    bind_dn: cn=idp,ou=services,dc=example,dc=org
    bind_password: ${LDAP_PASSWORD}
    user_base_dn: ou=people,dc=example,dc=org
    start_tls: true
keys:
  dir: keys
"""

THREE_MISTAKES = """
issuer: not-a-url
secret_key: 0123456789abcdef0123456789abcdef
directory:
  type: file
  file:
    path: users.yaml
session:
  idle_timeout: ten minutes
audit:
  sink: syslog
"""


def test_config_with_three_mistakes_reports_all_three(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text(THREE_MISTAKES)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    problems = exc.value.problems
    assert len(problems) == 3, problems
    assert any(p.startswith("issuer:") for p in problems)
    assert any(p.startswith("session.idle_timeout:") for p in problems)
    assert any(p.startswith("audit.sink:") for p in problems)


def test_config_check_cli_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text(THREE_MISTAKES)
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output
    for where in ("issuer:", "session.idle_timeout:", "audit.sink:"):
        assert where in result.output


def test_secrets_come_from_environment_variables(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text(GOOD)
    cfg = load_config(path, env={"IDP_SECRET": "s" * 40, "LDAP_PASSWORD": "hunter2"})
    assert cfg.secret_key == "s" * 40
    assert cfg.directory.ldap is not None and cfg.directory.ldap.bind_password == "hunter2"
    assert cfg.keys.dir == tmp_path / "keys"  # relative to the file's folder


def test_missing_environment_variables_are_each_reported(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text(GOOD)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    text = "\n".join(exc.value.problems)
    assert "`IDP_SECRET` is not set" in text and "`LDAP_PASSWORD` is not set" in text


@pytest.mark.parametrize(("data", "where"), [
    pytest.param({"store": {"url": "mongodb://x"}}, "store", id="unsupported-store-scheme"),
    pytest.param({"directory": {"type": "ldap"}}, "directory", id="ldap-without-section"),
    pytest.param({"bogus": 1}, "bogus", id="unknown-key-is-a-mistake"),
    pytest.param({"secret_key": "short"}, "secret_key", id="short-secret-key"),
    pytest.param({"session": {"idle_timeout": 9000, "absolute_timeout": 3600}}, "session",
                 id="idle-longer-than-absolute"),
    pytest.param({"directory": {"type": "ldap", "ldap": {
        "url": "http://x", "bind_dn": "a", "bind_password": "b", "user_base_dn": "c"}}},
        "directory.ldap", id="ldap-url-not-ldap"),
])
def test_each_kind_of_mistake_is_reported_with_its_path(data: dict[str, object],
                                                       where: str) -> None:
    base: dict[str, object] = {"issuer": "http://127.0.0.1:8000", "secret_key": "k" * 32,
                               "directory": {"type": "file", "file": {"path": "u.yaml"}}}
    base.update(data)
    with pytest.raises(ConfigError) as exc:
        parse_config(base, env={})
    assert any(p.startswith(where) for p in exc.value.problems), exc.value.problems


def test_unreadable_and_non_yaml_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("issuer: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_policy_variables_and_lowercase_templates_are_not_environment_references() -> None:
    cfg = parse_config({
        "issuer": "http://127.0.0.1:8000", "secret_key": "k" * 32,
        "directory": {"type": "file", "file": {"path": "u.yaml"}},
        "iam": {"accounts": [{"id": "111122223333"}],
                "policies": [{"name": "p", "document": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:*",
                     "Resource": "arn:aws:s3:::b/${aws:username}/*"}]}}],
                "mapping": [{"role": "Dev", "everyone": True,
                             "principal_tags": {"Email": "${email}"}}]},
    }, env={})
    doc = cfg.iam.policies[0].document
    assert doc["Statement"][0]["Resource"] == "arn:aws:s3:::b/${aws:username}/*"
    assert cfg.iam.mapping[0].principal_tags == {"Email": "${email}"}


# -- `idp config check` runs exactly what `idp serve` checks, in one pass ----------------------

SERVE_REFUSES = """
issuer: http://127.0.0.1:8000
secret_key: 0123456789abcdef0123456789abcdef
store: {url: "redis://127.0.0.1:6379/0"}
directory: {type: file, file: {path: missing-users.yaml}}
keys: {dir: no-keys, generate: false}
audit: {sink: file, path: no-such-folder/audit.log}
iam:
  accounts: [{id: "111122223333"}]
  roles: [{name: Dev, managed_policies: [Missing]}]
  saml_providers: [{name: corp, metadata_file: no-such-metadata.xml}]
  mapping: [{role: Nobody, everyone: true}]
"""
EVERY_STAGE = {
    "keys": "keys: no signing keys",
    "directory": "missing-users.yaml: cannot read",
    "audit folder": "audit.path: folder",
    "iam reference": "iam.roles[0].managed_policies: no policy `Missing`",
    "iam mapping": "iam.mapping[0].role: no role `Nobody`",
    "saml provider metadata": "iam.saml_providers[0] `corp` metadata: ",
}


def test_config_check_reports_every_problem_serve_refuses_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text(SERVE_REFUSES)
    checked = CliRunner().invoke(main, ["config", "check", str(path)])
    assert checked.exit_code == 2, checked.output
    assert f"{len(EVERY_STAGE)} problem(s)" in checked.output, checked.output
    for stage, text in EVERY_STAGE.items():
        assert text in checked.output, f"{stage}: {checked.output}"
    served = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert served.exit_code == 2
    assert served.output == checked.output, "serve refuses with the very same report"


def test_config_check_says_ok_for_a_config_serve_accepts(tmp_path: Path) -> None:
    from idp.demo import USERS_FILE

    path = tmp_path / "idp.yaml"
    path.write_text(f"""
issuer: http://127.0.0.1:8000
secret_key: 0123456789abcdef0123456789abcdef
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
keys: {{dir: keys, generate: true}}
""")
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("ok")
    assert not (tmp_path / "keys").exists(), "checking writes nothing"


def test_revoke_sessions_refuses_a_memory_store_it_cannot_reach(tmp_path: Path) -> None:
    path = tmp_path / "idp.yaml"
    path.write_text("""
issuer: http://127.0.0.1:8000
secret_key: 0123456789abcdef0123456789abcdef
store: {url: "memory://"}
directory: {type: file, file: {path: users.yaml}}
iam: {accounts: [{id: "111122223333"}], roles: [{name: Dev}]}
""")
    result = CliRunner().invoke(main, ["sts", "revoke-sessions", "--config", str(path),
                                       "arn:aws:iam::111122223333:role/Dev"])
    assert result.exit_code != 0
    assert "memory:// store lives inside the running idp process" in result.output
    assert "revoked" not in result.output


def test_config_check_reports_a_library_error_as_a_problem_not_a_traceback(
        tmp_path: Path) -> None:
    """An OIDC client with an empty key set made `idp serve` die with a traceback."""
    from idp.demo import USERS_FILE

    path = tmp_path / "idp.yaml"
    path.write_text(f"""
issuer: http://127.0.0.1:8000
secret_key: 0123456789abcdef0123456789abcdef
directory: {{type: file, file: {{path: {USERS_FILE}}}}}
oidc:
  clients:
    - client_id: signer
      token_endpoint_auth_method: private_key_jwt
      jwks: {{keys: []}}
""")
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert "oidc.clients:" in result.output and "Traceback" not in result.output
