"""The STS on the Redis store (a real ``redis-server``): credentials under ``idp:sts:<akid>``
with a TTL equal to their lifetime, one-time assertions, revocation markers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from botocore.credentials import Credentials
from click.testing import CliRunner

from idp.audit import Auditor, MemorySink
from idp.cli import main
from idp.iam import demo_model
from idp.keys import KeyRing
from idp.store import open_store
from idp.sts import StsService, StsSettings
from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, USER_KEY, Clock, Core, custom_model
from tests.sts.util import code, creds, field


def test_sts_on_redis(keyring: KeyRing, redis_url: str) -> None:
    store = open_store(redis_url)
    clock = Clock(dt.datetime.now(dt.UTC).timestamp())
    sink = MemorySink()
    svc = StsService(StsSettings(ISSUER), demo_model(ISSUER), keyring, store, Auditor(sink),
                     b"r" * 32, long_term={USER_KEY.access_key_id: USER_KEY}, clock=clock)
    core = Core(svc, store, sink, clock, keyring)  # type: ignore[arg-type]
    spec = A.Spec(ISSUER, now=dt.datetime.fromtimestamp(clock.t, dt.UTC))
    saml = A.encode(A.signed_response(spec, keyring.active("RS256")))
    params = {"Action": "AssumeRoleWithSAML", "RoleArn": A.role("Developer"),
              "PrincipalArn": A.PROVIDER, "SAMLAssertion": saml, "DurationSeconds": "900"}
    akid, secret, token = creds(core.call(params))
    ttl = store.ttl(f"idp:sts:{akid}")
    assert ttl is not None and 895 <= ttl <= 900
    assert code(core.call(params)) == "InvalidIdentityToken"  # replay, across processes
    who = core.call({"Action": "GetCallerIdentity"}, Credentials(akid, secret, token))
    assert field(who, "Arn") == "arn:aws:sts::111122223333:assumed-role/Developer/alice"
    store.close()


def test_cli_revoke_sessions_refuses_credentials_issued_before(
        keyring: KeyRing, redis_url: str, tmp_path: Path) -> None:
    """`idp sts revoke-sessions` (another process, same Redis) ends the role's live sessions."""
    store = open_store(redis_url)
    clock = Clock(dt.datetime.now(dt.UTC).timestamp() - 10)
    sink = MemorySink()
    svc = StsService(StsSettings(ISSUER), custom_model(ISSUER), keyring, store,
                     Auditor(sink), b"r" * 32, clock=clock)
    core = Core(svc, store, sink, clock, keyring)  # type: ignore[arg-type]
    spec = A.Spec(ISSUER, now=dt.datetime.fromtimestamp(clock.t, dt.UTC))
    params = {"Action": "AssumeRoleWithSAML", "RoleArn": A.role("Developer"),
              "PrincipalArn": A.PROVIDER, "DurationSeconds": "900",
              "SAMLAssertion": A.encode(A.signed_response(spec, keyring.active("RS256")))}
    akid, secret, token = creds(core.call(params))
    chain = {"Action": "AssumeRole", "RoleArn": A.role("ReadOnly"), "RoleSessionName": "chained"}
    first = core.call(chain, Credentials(akid, secret, token))
    assert first.status == 200, first.body
    cfg = tmp_path / "idp.yaml"
    cfg.write_text(yaml.safe_dump({
        "issuer": ISSUER, "secret_key": "r" * 32, "store": {"url": redis_url},
        "directory": {"type": "file", "file": {"path": "users.yaml"}},
        "audit": {"sink": "file", "path": str(tmp_path / "audit.log")},
        "iam": {"accounts": [{"id": "111122223333"}], "roles": [{"name": "Developer"}]}}))
    runner = CliRunner()
    unknown = runner.invoke(main, ["sts", "revoke-sessions", "--config", str(cfg),
                                   "arn:aws:iam::111122223333:role/Nope"])
    assert unknown.exit_code != 0 and "no role" in unknown.output
    done = runner.invoke(main, ["sts", "revoke-sessions", "--config", str(cfg),
                                A.role("Developer")])
    assert done.exit_code == 0, done.output
    assert code(core.call(chain, Credentials(akid, secret, token))) == "AccessDenied"
    assert '"eventName":"RevokeRoleSessions"' in (tmp_path / "audit.log").read_text()
    store.close()
