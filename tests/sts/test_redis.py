"""The STS on the Redis store (a real ``redis-server``): credentials under ``idp:sts:<akid>``
with a TTL equal to their lifetime, one-time assertions, revocation markers."""

from __future__ import annotations

import datetime as dt

from botocore.credentials import Credentials

from idp.audit import Auditor, MemorySink
from idp.iam import demo_model
from idp.keys import KeyRing
from idp.store import open_store
from idp.sts import StsService, StsSettings
from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, USER_KEY, Clock, Core
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
