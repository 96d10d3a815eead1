"""docker-compose.yml: no Docker engine runs here, so check what the file says.

The services, their images and ports, the keys volume, that the config it mounts validates,
and that the LDIF it seeds holds the demo users and groups.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from idp.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_idp_redis_openldap_and_keys_volume() -> None:
    services = _compose()["services"]
    assert set(services) == {"idp", "redis", "openldap"}
    assert services["redis"]["image"].startswith("redis:")
    assert "openldap" in services["openldap"]["image"]
    assert "8000:8000" in services["idp"]["ports"]
    assert "6379:6379" in services["redis"]["ports"] and "389:389" in services["openldap"]["ports"]
    assert any(v.startswith("idp-keys:") for v in services["idp"]["volumes"])
    assert "idp-keys" in _compose()["volumes"]
    assert services["idp"]["command"][:2] == ["idp", "serve"]


def _flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_redis_keeps_security_keys_across_restarts_and_never_evicts_them() -> None:
    """Replay markers and revocations lost in a restart would let a used assertion in again;
    an evicting policy would drop them under memory pressure."""
    redis = _compose()["services"]["redis"]
    command = redis["command"]
    assert _flag(command, "--appendonly") == "yes"
    assert _flag(command, "--appendfsync") == "always"
    assert _flag(command, "--maxmemory-policy") == "noeviction"
    assert _flag(command, "--save") != "", "no snapshot-only setup"
    assert any(v.endswith(":/data") for v in redis["volumes"]), "the AOF on a volume"
    assert "redis-data" in _compose()["volumes"]


def test_mounted_config_validates_and_points_at_the_compose_services() -> None:
    mounts = dict(v.split(":")[:2] for v in _compose()["services"]["idp"]["volumes"])
    config_src = next(src for src, dst in mounts.items() if dst == "/etc/idp/config.yaml")
    cfg = load_config(ROOT / config_src, env={"IDP_SECRET_KEY": "x" * 48,
                                              "LDAP_BIND_PASSWORD": "service-password"})
    assert cfg.store.url.startswith("redis://redis:")
    assert cfg.directory.ldap is not None and "openldap:389" in cfg.directory.ldap.url
    env = _compose()["services"]["idp"]["environment"]
    assert "IDP_SECRET_KEY" in env and "LDAP_BIND_PASSWORD" in env


def test_seed_ldif_has_demo_users_groups_and_service_account() -> None:
    mounts = [v.split(":") for v in _compose()["services"]["openldap"]["volumes"]]
    ldif = (ROOT / mounts[0][0]).read_text()
    for dn in ("uid=alice,ou=people", "uid=bob,ou=people", "uid=carol,ou=people",
               "cn=admins,ou=groups", "cn=engineering,ou=groups",
               "cn=idp-service,ou=services"):
        assert f"dn: {dn},dc=example,dc=org" in ldif
