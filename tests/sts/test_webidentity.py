"""AssumeRoleWithWebIdentity: JWTs of registered OIDC providers only, RS256/ES256 only, and the
iss/aud/exp/nbf/iat rules (each refusal asserts AWS's code and that nothing was stored)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, Core
from tests.sts.util import code, creds, field


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def token(core: Core, alg: str = "RS256", **claims: Any) -> str:
    now = int(core.clock.t)
    body = {"iss": ISSUER, "sub": "alice-subject", "aud": "demo-cli", "iat": now,
            "exp": now + 300, "roles": [A.role("Developer"), A.role("ReadOnly")], **claims}
    body = {k: v for k, v in body.items() if v is not None}
    k = core.keys.active(alg)  # type: ignore[arg-type]
    key = ECKey.import_key(k.private_key) if alg == "ES256" else RSAKey.import_key(k.private_key)
    return jwt.encode({"alg": alg, "kid": k.kid, "typ": "JWT"}, body, key, algorithms=[alg])


def params(tok: str, role: str = "Developer", **extra: str) -> dict[str, str]:
    return {"Action": "AssumeRoleWithWebIdentity", "RoleArn": A.role(role),
            "RoleSessionName": "web", "WebIdentityToken": tok, **extra}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_accepted(core: Core, alg: str) -> None:
    r = core.call(params(token(core, alg)))
    assert field(r, "AssumedRoleUser/Arn") == \
        "arn:aws:sts::111122223333:assumed-role/Developer/web"
    assert field(r, "SubjectFromWebIdentityToken") == "alice-subject"
    assert field(r, "Audience") == "demo-cli"
    assert field(r, "Provider") == "127.0.0.1:8000"


def test_session_tags_claim(core: Core) -> None:
    tags = {"principal_tags": {"team": ["blue"]}, "transitive_tag_keys": ["team"]}
    r = core.call(params(token(core, **{"https://aws.amazon.com/tags": tags})))
    s = core.svc.credentials.peek(creds(r)[0])
    assert s is not None and dict(s.tags) == {"team": "blue"}
    assert s.transitive_tag_keys == ("team",)


def alg_none(core: Core) -> str:
    parts = token(core).split(".")
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{parts[1]}."


def hs256_with_public_key(core: Core) -> str:
    import hashlib
    import hmac

    k = core.keys.active("RS256")
    now = int(core.clock.t)
    signing_input = ".".join([_b64({"alg": "HS256", "kid": k.kid}), _b64(
        {"iss": ISSUER, "sub": "x", "aud": "demo-cli", "iat": now, "exp": now + 300})])
    mac = hmac.new(k.cert_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def tampered(core: Core) -> str:
    h, _, s = token(core).split(".")
    now = int(core.clock.t)
    return ".".join([h, _b64({"iss": ISSUER, "sub": "admin", "aud": "demo-cli", "iat": now,
                              "exp": now + 300}), s])


def unknown_kid(core: Core) -> str:
    h, p, s = token(core).split(".")
    return ".".join([_b64({"alg": "RS256", "kid": "nope"}), p, s])


def claims(**kw: Any) -> Callable[[Core], str]:
    return lambda core: token(core, **kw)


def shifted(**offsets: int) -> Callable[[Core], str]:
    return lambda core: token(core, **{k: int(core.clock.t) + v for k, v in offsets.items()})


CASES = [
    pytest.param(alg_none, "InvalidIdentityToken", id="alg none"),
    pytest.param(hs256_with_public_key, "InvalidIdentityToken",
                 id="HS256 keyed with the public certificate"),
    pytest.param(tampered, "InvalidIdentityToken", id="payload swapped after signing"),
    pytest.param(unknown_kid, "InvalidIdentityToken", id="unknown kid"),
    pytest.param(claims(iss="https://evil.example.org"), "InvalidIdentityToken",
                 id="wrong issuer"),
    pytest.param(claims(aud="someone-else"), "InvalidIdentityToken", id="wrong audience"),
    pytest.param(shifted(exp=-120, iat=-600), "ExpiredTokenException", id="expired"),
    pytest.param(shifted(nbf=+600), "InvalidIdentityToken", id="not yet valid"),
    pytest.param(shifted(iat=+600, exp=+900), "InvalidIdentityToken", id="issued in the future"),
    pytest.param(claims(exp=None), "InvalidIdentityToken", id="no exp"),
    pytest.param(claims(sub=None), "InvalidIdentityToken", id="no sub"),
    pytest.param(lambda core: "not.a.jwt", "InvalidIdentityToken", id="garbage"),
]


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_refused(core: Core, build: Callable[[Core], str], expected: str) -> None:
    r = core.call(params(build(core)))
    assert code(r) == expected, r.body
    assert r.status == 400
    assert core.stored_sessions() == 0
    assert any(e.get("errorCode") == expected and e["eventName"] == "AssumeRoleWithWebIdentity"
               for e in core.sink.records)


@pytest.mark.parametrize("roles", [
    pytest.param(None, id="no roles claim"),
    pytest.param([], id="empty roles claim"),
    pytest.param([A.role("ReadOnly")], id="roles claim without the asked role"),
    pytest.param(A.role("ReadOnly"), id="roles claim as one string without it"),
    pytest.param({"Developer": True}, id="roles claim of the wrong type"),
    pytest.param([A.role("Developer") + "x"], id="longer ARN with the role as prefix"),
])
def test_default_trust_needs_the_role_in_the_roles_claim(core: Core, roles: Any) -> None:
    """``aud`` alone admits nobody: the token's ``roles`` must list the role (fail closed)."""
    r = core.call(params(token(core, roles=roles), role="Developer"))
    assert code(r) == "AccessDenied" and r.status == 403, r.body
    assert core.stored_sessions() == 0


def test_roles_claim_as_one_string_naming_the_role(core: Core) -> None:
    r = core.call(params(token(core, roles=A.role("Developer")), role="Developer"))
    assert field(r, "AssumedRoleUser/Arn").endswith("assumed-role/Developer/web")


def test_role_not_trusting_provider(custom: Core) -> None:
    r = custom.call(params(token(custom), role="Locked"))
    assert code(r) == "AccessDenied" and custom.stored_sessions() == 0


def test_duration_above_max_session_duration(core: Core) -> None:
    r = core.call(params(token(core), role="Developer", DurationSeconds="20000"))
    assert code(r) == "ValidationError" and "MaxSessionDuration" in r.body
    assert core.stored_sessions() == 0
