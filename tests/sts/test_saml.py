"""AssumeRoleWithSAML: every documented check, and the attacks it must refuse (each case names
the rule or attack; every refusal asserts AWS's code and that no credentials were stored)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from idp.keys import SigningKey
from tests.sts import assertions as A
from tests.sts.conftest import ISSUER, Core
from tests.sts.util import code, creds, field

A_NS = f"{{{A.A}}}"
P_NS = f"{{{A.P}}}"


def _params(saml: str, role: str = "Developer", **extra: str) -> dict[str, str]:
    return {"Action": "AssumeRoleWithSAML", "RoleArn": A.role(role), "PrincipalArn": A.PROVIDER,
            "SAMLAssertion": saml, **extra}


def _foreign_key() -> SigningKey:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return SigningKey("evil", "RS256", "active", "", key, cert)


def ok_spec(core: Core, **kw: Any) -> A.Spec:
    return A.Spec(ISSUER, now=dt.datetime.fromtimestamp(core.clock.t, dt.UTC), **kw)


def good(core: Core, **kw: Any) -> etree._Element:
    return A.signed_response(ok_spec(core, **kw), core.keys.active("RS256"))


# -- attacks on the document: (id, builder(core) -> SAMLAssertion) ---------------------------

def tampered(core: Core) -> str:
    r = good(core)
    v = r.find(f".//{A_NS}Attribute[@Name='{A.AWS}RoleSessionName']/{A_NS}AttributeValue")
    v.text = "mallory"
    return A.encode(r)


def evil_assertion(core: Core) -> etree._Element:
    spec = ok_spec(core, subject="mallory@example.org", session_name="mallory")
    evil = A.build_assertion(spec)
    return evil


def xsw_before(core: Core) -> str:
    r = good(core)
    r.insert(2, evil_assertion(core))
    return A.encode(r)


def xsw_after(core: Core) -> str:
    r = good(core)
    r.append(evil_assertion(core))
    return A.encode(r)


def xsw_around(core: Core) -> str:
    r = good(core)
    signed = r.find(f"{A_NS}Assertion")
    evil = evil_assertion(core)
    evil.set("ID", signed.get("ID"))
    r.remove(signed)
    subj = evil.find(f"{A_NS}Subject")
    subj.append(signed)
    r.append(evil)
    return A.encode(r)


def xsw_extensions(core: Core) -> str:
    r = good(core)
    signed = r.find(f"{A_NS}Assertion")
    evil = evil_assertion(core)
    evil.set("ID", signed.get("ID"))
    r.remove(signed)
    ext = etree.Element(f"{P_NS}Extensions")
    ext.append(signed)
    r.insert(1, ext)
    r.append(evil)
    return A.encode(r)


def xsw_in_signature(core: Core) -> str:
    r = good(core)
    signed = r.find(f"{A_NS}Assertion")
    evil = evil_assertion(core)
    sig = copy.deepcopy(signed.find(f"{{{A.DS}}}Signature"))
    r.remove(signed)
    obj = etree.SubElement(sig, f"{{{A.DS}}}Object")
    obj.append(signed)
    evil.set("ID", signed.get("ID"))
    evil.insert(1, sig)
    r.append(evil)
    return A.encode(r)


def evil_in_signature_object(core: Core) -> str:
    """The enveloped transform drops the whole Signature: an Object inside it is unsigned."""
    r = good(core)
    sig = r.find(f"{A_NS}Assertion").find(f"{{{A.DS}}}Signature")
    obj = etree.SubElement(sig, f"{{{A.DS}}}Object")
    obj.append(evil_assertion(core))
    return A.encode(r)


def duplicate_id(core: Core) -> str:
    """Another element carries the signed assertion's ID (a resolver could pick either)."""
    r = good(core)
    ext = etree.Element(f"{P_NS}Extensions", ID=r.find(f"{A_NS}Assertion").get("ID"))
    r.insert(1, ext)
    return A.encode(r)


def reference_elsewhere(core: Core) -> str:
    """The assertion's signature covers some other element (here: the response's Issuer)."""
    spec = ok_spec(core)
    r = A.build_response(spec)
    issuer = r.find(f"{A_NS}Issuer")
    issuer.set("ID", "_issuer")
    A.sign(issuer, core.keys.active("RS256"))
    sig = issuer.find(f"{{{A.DS}}}Signature")
    issuer.remove(sig)
    r.find(f"{A_NS}Assertion").insert(1, sig)
    return A.encode(r)


def comment_in_name_id(core: Core) -> str:
    r = good(core, subject="admin@example.org.evil.com")
    nid = r.find(f".//{A_NS}NameID")
    nid.text = "admin@example.org"
    c = etree.Comment("")
    c.tail = ".evil.com"
    nid.append(c)
    return A.encode(r)


def unsigned(core: Core) -> str:
    return A.encode(A.build_response(ok_spec(core)))


def unregistered_key(core: Core) -> str:
    return A.encode(A.signed_response(ok_spec(core), _foreign_key()))


def doctype(core: Core) -> str:
    body = A.encode(good(core))
    import base64

    xml = base64.b64decode(body)
    evil = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>' + xml
    return base64.b64encode(evil).decode()


def time_shift(seconds: int) -> Callable[[Core], str]:
    def build(core: Core) -> str:
        spec = A.Spec(ISSUER, now=dt.datetime.fromtimestamp(core.clock.t + seconds, dt.UTC))
        return A.encode(A.signed_response(spec, core.keys.active("RS256")))
    return build


def signed_edit(xpath: str, attr: str | None, value: str) -> Callable[[Core], str]:
    """A genuinely signed assertion whose element at ``xpath`` (its attribute ``attr``, or its
    text) was set to ``value`` before signing: what only a trusted IdP could send."""
    def build(core: Core) -> str:
        s = ok_spec(core, session_duration=900)
        a = A.build_assertion(s)
        el = a.find(xpath)
        assert el is not None, xpath
        if attr is None:
            el.text = value
        else:
            el.set(attr, value)
        return A.encode(A.build_response(s, A.sign(a, core.keys.active("RS256"))))
    return build


_DURATION = f"{A_NS}AttributeStatement/{A_NS}Attribute[@Name='{A.AWS}SessionDuration']/" \
    f"{A_NS}AttributeValue"


def with_spec(**kw: Any) -> Callable[[Core], str]:
    def build(core: Core) -> str:
        return A.encode(good(core, **kw))
    return build


ATTACKS = [
    pytest.param(tampered, "InvalidIdentityToken", id="tampered attribute after signing"),
    pytest.param(time_shift(-3600), "ExpiredTokenException", id="expired assertion"),
    pytest.param(time_shift(+900), "InvalidIdentityToken", id="not yet valid assertion"),
    pytest.param(with_spec(audience="https://sp.example.org"), "InvalidIdentityToken",
                 id="wrong audience"),
    pytest.param(with_spec(recipient="https://evil.example.org/acs"), "InvalidIdentityToken",
                 id="wrong recipient"),
    pytest.param(xsw_before, "InvalidIdentityToken", id="xsw evil assertion before signed one"),
    pytest.param(xsw_after, "InvalidIdentityToken", id="xsw evil assertion after signed one"),
    pytest.param(xsw_around, "InvalidIdentityToken", id="xsw evil assertion around signed one"),
    pytest.param(xsw_extensions, "InvalidIdentityToken", id="xsw signed assertion in Extensions"),
    pytest.param(xsw_in_signature, "InvalidIdentityToken",
                 id="xsw signed assertion inside the Signature element"),
    pytest.param(evil_in_signature_object, "InvalidIdentityToken",
                 id="xsw evil assertion inside the signed assertion's Signature Object"),
    pytest.param(duplicate_id, "InvalidIdentityToken", id="xsw duplicate ID"),
    pytest.param(reference_elsewhere, "InvalidIdentityToken",
                 id="xsw signature references another element"),
    pytest.param(comment_in_name_id, "InvalidIdentityToken", id="comment injection in NameID"),
    pytest.param(unsigned, "InvalidIdentityToken", id="unsigned assertion"),
    pytest.param(unregistered_key, "InvalidIdentityToken", id="signed by an unregistered key"),
    pytest.param(doctype, "InvalidIdentityToken", id="DTD with entities"),
    pytest.param(with_spec(roles=[f"{A.role('Admin')},{A.PROVIDER}"]), "AccessDenied",
                 id="role pair not in the assertion"),
    pytest.param(with_spec(session_name="bad name!"), "InvalidIdentityToken",
                 id="invalid RoleSessionName attribute"),
    pytest.param(signed_edit(_DURATION, None, "\u00b2"), "InvalidIdentityToken",
                 id="SessionDuration a superscript two (isdigit, not int)"),
    pytest.param(signed_edit(_DURATION, None, "\u0669\u0660\u0660"), "InvalidIdentityToken",
                 id="SessionDuration in Arabic-Indic digits"),
    pytest.param(signed_edit(f"{A_NS}Conditions", "NotOnOrAfter", "2999-01-01T00:00:00"),
                 "InvalidIdentityToken", id="NotOnOrAfter without a time zone"),
    pytest.param(signed_edit(f"{A_NS}Conditions", "NotOnOrAfter",
                             "\u0662\u0669\u0669\u0669-01-01T00:00:00Z"),
                 "InvalidIdentityToken", id="NotOnOrAfter in Arabic-Indic digits"),
]


@pytest.mark.parametrize(("build", "expected"), ATTACKS)
def test_refused(core: Core, build: Callable[[Core], str], expected: str) -> None:
    r = core.call(_params(build(core)))
    assert code(r) == expected, r.body
    assert r.status == (403 if expected == "AccessDenied" else 400)
    assert core.stored_sessions() == 0
    refusals = [e for e in core.sink.records if e.get("errorCode") == expected]
    assert refusals and refusals[-1]["eventName"] == "AssumeRoleWithSAML"


def test_sign_in_session_over(core: Core) -> None:
    r = core.call(_params(A.encode(good(core, session_end=300))))
    assert code(r) == "InvalidIdentityToken" and core.stored_sessions() == 0


def test_replayed_assertion_refused(core: Core) -> None:
    saml = A.encode(good(core))
    assert core.call(_params(saml)).status == 200
    r = core.call(_params(saml))
    assert code(r) == "InvalidIdentityToken" and "already been used" in r.body
    assert core.stored_sessions() == 1


def test_role_pair_in_either_order(core: Core) -> None:
    r = core.call(_params(A.encode(good(core, roles=[f"{A.PROVIDER},{A.role('Developer')}"]))))
    assert field(r, "AssumedRoleUser/Arn") == \
        "arn:aws:sts::111122223333:assumed-role/Developer/alice"


def test_comment_free_subject_is_read_from_signed_bytes(core: Core) -> None:
    r = core.call(_params(A.encode(good(core, subject="admin@example.org.evil.com"))))
    assert field(r, "Subject") == "admin@example.org.evil.com"


def test_unknown_provider(core: Core) -> None:
    p = _params(A.encode(good(core)))
    p["PrincipalArn"] = "arn:aws:iam::111122223333:saml-provider/other"
    r = core.call(p)
    assert code(r) == "InvalidIdentityToken" and core.stored_sessions() == 0


def test_trust_policy_denies(custom: Core) -> None:
    spec = ok_spec(custom, roles=[f"{A.role('Locked')},{A.PROVIDER}"])
    r = custom.call(_params(A.encode(A.signed_response(spec, custom.keys.active("RS256"))),
                            role="Locked"))
    assert code(r) == "AccessDenied" and r.status == 403
    assert custom.stored_sessions() == 0


PARAMS = [
    pytest.param({"DurationSeconds": "899"}, "ValidationError", id="DurationSeconds below 900"),
    pytest.param({"DurationSeconds": "43201"}, "ValidationError",
                 id="DurationSeconds above 43200"),
    pytest.param({"DurationSeconds": "20000"}, "ValidationError",
                 id="DurationSeconds above MaxSessionDuration"),
    pytest.param({"Policy": "{" + " " * 2100 + "}"}, "ValidationError", id="policy too long"),
    pytest.param({"Policy": '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe",'
                            '"Action":"s3:*","Resource":"*"}]}'}, "MalformedPolicyDocument",
                 id="policy malformed"),
    pytest.param({"Policy": "not json"}, "MalformedPolicyDocument", id="policy not JSON"),
    pytest.param({f"PolicyArns.member.{i}.arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"
                  for i in range(1, 12)}, "ValidationError", id="more than 10 policy ARNs"),
]


@pytest.mark.parametrize(("extra", "expected"), PARAMS)
def test_parameters_refused(core: Core, extra: dict[str, str], expected: str) -> None:
    r = core.call(_params(A.encode(good(core)), **extra))
    assert code(r) == expected, r.body
    assert r.status == 400
    assert core.stored_sessions() == 0


def test_packed_policy_too_large(core: Core) -> None:
    import secrets

    tags = {f"k{i}-{secrets.token_hex(20)}": secrets.token_hex(60) for i in range(40)}
    r = core.call(_params(A.encode(good(core, tags=tags))))
    assert code(r) == "PackedPolicyTooLarge"
    assert core.stored_sessions() == 0


@pytest.mark.parametrize(("tags", "expected"), [
    pytest.param({f"k{i}": "v" for i in range(51)}, "ValidationError", id="more than 50 tags"),
    pytest.param({"aws:x": "v"}, "InvalidParameterValue", id="tag key with the aws prefix"),
    pytest.param({"k": "x" * 257}, "ValidationError", id="tag value too long"),
    pytest.param({"bad<key": "v"}, "ValidationError", id="tag key with a forbidden character"),
    pytest.param({"Team": "a", "team": "b"}, "InvalidParameterValue",
                 id="tag keys equal ignoring case"),
])
def test_assertion_tags_refused(core: Core, tags: dict[str, str], expected: str) -> None:
    r = core.call(_params(A.encode(good(core, tags=tags))))
    assert code(r) == expected, r.body
    assert core.stored_sessions() == 0


def test_request_tags_ignored_for_saml(core: Core) -> None:
    """``AssumeRoleWithSAML`` has no ``Tags`` member: tags come from the assertion only."""
    r = core.call(_params(A.encode(good(core)), **{"Tags.member.1.Key": "k",
                                                   "Tags.member.1.Value": "v"}))
    s = core.svc.credentials.peek(creds(r)[0])
    assert s is not None and dict(s.tags) == {}


@pytest.mark.parametrize(("duration", "attr", "expected"), [
    pytest.param(None, None, 3600, id="default one hour"),
    pytest.param("7200", None, 7200, id="DurationSeconds within MaxSessionDuration"),
    pytest.param("7200", 1800, 1800, id="SessionDuration attribute shortens"),
    pytest.param(None, 10000, 3600, id="default is not lengthened by SessionDuration"),
    pytest.param("7200", None, 1200, id="SessionNotOnOrAfter shortens"),
])
def test_session_ends_at_the_earliest(core: Core, duration: str | None, attr: int | None,
                                      expected: int) -> None:
    extra = {"DurationSeconds": duration} if duration else {}
    end = 1200 if expected == 1200 else None
    r = core.call(_params(A.encode(good(core, session_duration=attr, session_end=end)),
                          **extra))
    akid = creds(r)[0]
    session = core.svc.credentials.peek(akid)
    assert session is not None and expected - 1 <= session.expires - session.issued <= expected
    assert core.store.ttl(f"idp:sts:{akid}") in (expected, expected - 1, expected - 2)


def test_tags_source_identity_and_session_policy(core: Core) -> None:
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*",' \
             '"Resource":"*"}]}'
    saml = A.encode(good(core, tags={"team": "blue", "username": "alice"},
                         transitive=["username"], source_identity="alice"))
    r = core.call(_params(saml, Policy=policy))
    assert int(field(r, "PackedPolicySize") or 0) > 0
    assert field(r, "SourceIdentity") == "alice"
    session = core.svc.credentials.peek(creds(r)[0])
    assert session is not None
    assert dict(session.tags) == {"team": "blue", "username": "alice"}
    assert session.transitive_tag_keys == ("username",)
    assert session.source_identity == "alice" and len(session.session_policies) == 1
    issued = [e for e in core.sink.records if e["eventName"] == "AssumeRoleWithSAML"
              and not e.get("errorCode")]
    assert issued and issued[-1]["additionalEventData"]["sourceIdentity"] == "alice"


def test_response_signed_instead_of_assertion(core: Core) -> None:
    spec = ok_spec(core)
    resp = A.sign(A.build_response(spec), core.keys.active("RS256"))
    r = core.call(_params(A.encode(resp)))
    assert r.status == 200, r.body


def test_signature_on_response_with_second_assertion_refused(core: Core) -> None:
    spec = ok_spec(core)
    resp = A.build_response(spec)
    resp.append(A.build_assertion(replace(spec, assertion_id="_other")))
    A.sign(resp, core.keys.active("RS256"))
    r = core.call(_params(A.encode(resp)))
    assert code(r) == "InvalidIdentityToken" and core.stored_sessions() == 0
