"""SigV4 verification with botocore's own signers (header and presigned), and the refusals AWS
documents: wrong secret, expired or unknown token, clock skew beyond 5 minutes, altered body."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import replace

import pytest
from botocore.credentials import Credentials

from idp.audit import Auditor, MemorySink
from idp.iam import demo_model
from idp.keys import KeyRing
from idp.store.memory import MemoryStore
from idp.sts import QueryRequest, StsService, StsSettings
from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, USER_KEY, Core, signed_request
from tests.sts.util import code, creds, field

WHO = {"Action": "GetCallerIdentity"}


def session_creds(core: Core, role: str = "Developer") -> Credentials:
    spec = A.Spec(ISSUER, now=dt.datetime.fromtimestamp(core.clock.t, dt.UTC),
                  roles=[f"{A.role(role)},{A.PROVIDER}"])
    saml = A.encode(A.signed_response(spec, core.keys.active("RS256")))
    r = core.call({"Action": "AssumeRoleWithSAML", "RoleArn": A.role(role),
                   "PrincipalArn": A.PROVIDER, "SAMLAssertion": saml})
    return Credentials(*creds(r))


def user_creds() -> Credentials:
    return Credentials(USER_KEY.access_key_id, USER_KEY.secret_access_key)


@pytest.mark.parametrize("presign", [pytest.param(False, id="header"),
                                     pytest.param(True, id="presigned query string")])
def test_get_caller_identity(core: Core, presign: bool) -> None:
    r = core.call(WHO, session_creds(core), presign=presign)
    assert r.status == 200, r.body
    assert field(r, "Arn") == "arn:aws:sts::111122223333:assumed-role/Developer/alice"
    assert field(r, "Account") == "111122223333"
    assert (field(r, "UserId") or "").startswith("AROA")


def test_long_term_key(core: Core) -> None:
    r = core.call(WHO, user_creds())
    assert field(r, "Arn") == USER_KEY.principal_arn


def _alter_body(req: QueryRequest) -> QueryRequest:
    return replace(req, body=req.body + b"&RoleArn=x")


def _drop_token(req: QueryRequest) -> QueryRequest:
    h = {k: v for k, v in req.headers.items() if k != "x-amz-security-token"}
    return replace(req, headers=h)


def _other_host(req: QueryRequest) -> QueryRequest:
    return replace(req, headers={**req.headers, "host": "evil.example.org"})


BAD: list[object] = [
    pytest.param(lambda c: Credentials(c.access_key, "x" * 40, c.token), None, 0,
                 "SignatureDoesNotMatch", id="wrong secret"),
    pytest.param(lambda c: c, _alter_body, 0, "SignatureDoesNotMatch", id="altered body"),
    pytest.param(lambda c: c, _other_host, 0, "SignatureDoesNotMatch", id="altered host"),
    pytest.param(lambda c: c, None, 301, "SignatureDoesNotMatch", id="skew beyond 5 minutes"),
    pytest.param(lambda c: c, None, -301, "SignatureDoesNotMatch",
                 id="skew beyond 5 minutes ahead"),
    pytest.param(lambda c: c, None, -3700, "ExpiredToken", id="expired token"),
    pytest.param(lambda c: c, None, -3701, "ExpiredToken",
                 id="expired token the store has forgotten"),
    pytest.param(lambda c: Credentials(c.access_key, c.secret_key, "v1.forged"), None, 0,
                 "InvalidClientTokenId", id="forged token"),
    pytest.param(lambda c: Credentials("ASIAAAAAAAAAAAAAAAAA", c.secret_key, c.token), None,
                 0, "InvalidClientTokenId", id="unknown access key"),
    pytest.param(lambda c: c, _drop_token, 0, "InvalidClientTokenId",
                 id="session key without its token"),
]


CHAIN = {"Action": "AssumeRole", "RoleArn": A.role("ReadOnly"), "RoleSessionName": "next"}


def test_signed_assume_role_control(custom: Core) -> None:
    """The request of the table below, unaltered, is accepted (so each refusal is real)."""
    assert custom.call(CHAIN, session_creds(custom)).status == 200


@pytest.mark.parametrize(("mutate", "tamper", "later", "expected"), BAD)
def test_refused(custom: Core, mutate: Callable[[Credentials], Credentials],
                 tamper: Callable[[QueryRequest], QueryRequest] | None, later: int,
                 expected: str) -> None:
    core = custom
    if later < -3600:  # issue the session an hour ago: it has expired by now
        real = core.clock.t
        core.clock.t = real + later
        good = session_creds(core)
        core.clock.t = real
        if later == -3701:  # the store dropped it: only the token's MAC still tells
            core.store._clock = lambda: 1e12  # type: ignore[method-assign]
    else:
        good = session_creds(core)
        core.clock.t += later
    before = core.stored_sessions()
    r = core.call(CHAIN, mutate(good), tamper=tamper)
    assert code(r) == expected, r.body
    assert r.status == 403
    assert core.stored_sessions() <= before  # nothing new (an expired entry may go)
    assert any(e.get("errorCode") == expected for e in core.sink.records)


def test_unsigned_request_refused(core: Core) -> None:
    r = core.call(WHO)
    assert code(r) == "MissingAuthenticationToken" and r.status == 403


def test_wrong_service_scope(core: Core) -> None:
    req = signed_request({"Version": "2011-06-15", **WHO}, session_creds(core), service="iam")
    r = core.svc.handle(req)
    assert code(r) == "IncompleteSignature"


def test_revoked_sessions(custom: Core) -> None:
    old = session_creds(custom)
    custom.clock.t += 5
    custom.svc.credentials.revoke_role_sessions(A.role("Developer"))
    custom.clock.t += 5
    new = session_creds(custom)
    target = {"Action": "AssumeRole", "RoleArn": A.role("ReadOnly"), "RoleSessionName": "x2"}
    assert code(custom.call(target, old)) == "AccessDenied"
    assert custom.call(target, new).status == 200


# -- malformed signature fields: AWS's 4xx, never InternalFailure -----------------------------

def _query_param(name: str, raw: str) -> Callable[[QueryRequest], QueryRequest]:
    """Replace one (still percent-encoded) parameter of a presigned query string."""
    def tamper(req: QueryRequest) -> QueryRequest:
        pairs = [p if not p.startswith(name + "=") else f"{name}={raw}"
                 for p in req.query.split("&")]
        assert pairs != req.query.split("&"), f"{name} not in the presigned query"
        return replace(req, query="&".join(pairs))
    return tamper


def _header(name: str, value: str) -> Callable[[QueryRequest], QueryRequest]:
    def tamper(req: QueryRequest) -> QueryRequest:
        return replace(req, headers={**req.headers, name: value})
    return tamper


def _authorization(sub: tuple[str, str]) -> Callable[[QueryRequest], QueryRequest]:
    def tamper(req: QueryRequest) -> QueryRequest:
        auth = req.headers["authorization"]
        assert sub[0] in auth
        return replace(req, headers={**req.headers, "authorization": auth.replace(*sub)})
    return tamper


MALFORMED: list[object] = [
    pytest.param(True, _query_param("X-Amz-Date", "20261399T999999Z"),
                 id="presigned date of the right shape but no such day or time"),
    pytest.param(True, _query_param("X-Amz-Date", "%D9%A2%D9%A0%D9%A2%D9%A60101T000000Z"),
                 id="presigned date in Arabic-Indic digits"),
    pytest.param(True, _query_param("X-Amz-Expires", "%C2%B2"),
                 id="presigned expiry a superscript two (isdigit, not int)"),
    pytest.param(True, _query_param("X-Amz-Expires", "%D9%A3%D9%A0%D9%A0"),
                 id="presigned expiry in Arabic-Indic digits (int accepts them)"),
    pytest.param(True, _query_param("X-Amz-Expires", "0"), id="presigned expiry zero"),
    pytest.param(True, _query_param("X-Amz-Expires", "604801"),
                 id="presigned expiry beyond 7 days"),
    pytest.param(True, _query_param("X-Amz-Expires", "9" * 400),
                 id="presigned expiry of 400 digits"),
    pytest.param(False, _header("x-amz-date", "20261399T999999Z"),
                 id="header date of the right shape but no such day or time"),
    pytest.param(False, _header("x-amz-date", "2026\uff10101T000000Z"),
                 id="header date with a fullwidth digit"),
    pytest.param(False, _header("x-amz-date", ""), id="header date missing"),
    pytest.param(False, _authorization(("Credential=", "Credential=x/")),
                 id="header credential scope of six parts"),
    pytest.param(False, _authorization(("SignedHeaders=", "Signed=")),
                 id="header without SignedHeaders"),
]


@pytest.mark.parametrize(("presign", "tamper"), MALFORMED)
def test_malformed_signature_fields_are_incomplete_signature(
        core: Core, presign: bool, tamper: Callable[[QueryRequest], QueryRequest]) -> None:
    """A signature whose date, expiry or fields are not what SigV4 defines is AWS's
    ``IncompleteSignature`` (400, "Common Errors"), read ASCII-strict: never a 500."""
    r = core.call(WHO, session_creds(core), presign=presign, tamper=tamper)
    assert (r.status, code(r)) == (400, "IncompleteSignature"), r.body


@pytest.mark.parametrize(("presign", "tamper"), [
    pytest.param(False, lambda req: _authorization_signature(req, "\u00fc"),
                 id="header signature a non-ASCII letter"),
    pytest.param(True, _query_param("X-Amz-Signature", "%C3%BC"),
                 id="presigned signature a non-ASCII letter"),
])
def test_non_ascii_signature_is_signature_does_not_match(
        core: Core, presign: bool, tamper: Callable[[QueryRequest], QueryRequest]) -> None:
    """``hmac.compare_digest`` refuses ``str`` with non-ASCII characters (a ``TypeError``,
    once a 500): the signature is compared as bytes."""
    r = core.call(WHO, session_creds(core), presign=presign, tamper=tamper)
    assert (r.status, code(r)) == (403, "SignatureDoesNotMatch"), r.body


def _authorization_signature(req: QueryRequest, value: str) -> QueryRequest:
    auth = re.sub(r"Signature=\w+", "Signature=" + value, req.headers["authorization"])
    return replace(req, headers={**req.headers, "authorization": auth})


# -- the credential scope's region is the configured one --------------------------------------

def test_scope_for_another_region_is_signature_does_not_match(core: Core) -> None:
    """AWS's regional endpoints refuse a scope for another region: ``SignatureDoesNotMatch``
    (403), "Credential should be scoped to a valid region"."""
    for presign in (False, True):
        req = signed_request({"Version": "2011-06-15", **WHO}, session_creds(core),
                             presign=presign, region="eu-west-1")
        r = core.svc.handle(req)
        assert (r.status, code(r)) == (403, "SignatureDoesNotMatch"), r.body
        assert "Credential should be scoped to a valid region" in r.body
        assert "us-east-1" in r.body  # says which region to sign for


def test_configured_region_is_the_one_accepted(keyring: KeyRing) -> None:
    """With ``sts.region: eu-west-1`` a client signs for eu-west-1; us-east-1 is refused."""
    svc = StsService(StsSettings(ISSUER, region="eu-west-1"), demo_model(ISSUER), keyring,
                     MemoryStore(), Auditor(MemorySink()), b"s" * 32,
                     long_term={USER_KEY.access_key_id: USER_KEY})
    params = {"Version": "2011-06-15", **WHO}
    ok = svc.handle(signed_request(params, user_creds(), region="eu-west-1"))
    assert ok.status == 200, ok.body
    wrong = svc.handle(signed_request(params, user_creds()))
    assert (wrong.status, code(wrong)) == (403, "SignatureDoesNotMatch")
