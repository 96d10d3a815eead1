"""Boundary values and structured values (JWTs, SAML messages) for the fuzz generators.

Plain lists of boundary values (Unicode digits, impossible dates, control characters, invalid
percent-escapes) and hypothesis strategies for values with structure: JSON of any shape,
compact JWS with arbitrary headers and payloads, tokens signed by the IdP itself with
arbitrary claims, SAML messages in either binding, and redirect queries signed by the test
service provider.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

Strat = st.SearchStrategy[Any]

# -- boundary values ---------------------------------------------------------------------------

NUMBERS = ["0", "-1", "1", "²", "٣", "１", "①", "½", "٣٠٠", "１２", " 1", "1 ", "+1", "0x10",
           "1e3", "1.5", "-0", "2147483648", "-9223372036854775809", "18446744073709551616",
           "9" * 400, "NaN", "Infinity", ""]
DATES = ["20261399T999999Z", "20260230T120000Z", "99999999T999999Z", "00000000T000000Z",
         "20261129T250000Z", "2026-11-29T12:00:00Z", "20261129", "1", ""]
STRINGS = ["", " ", "\x00", "a\x00b", "\r\n", "\t", "\x7f", "\x1b[31m", "\u202e", "\ufeff",
           "é", "日本", "😀", "\u0130", "null", "true", "[]", "{}", "<x/>", "'\"<script>",
           "../../../etc/passwd", "%", "%%", "a=b&c=d", "\\", "${jndi:ldap://x}",
           "A" * 5000, "é" * 3000]
# percent-escapes as they appear on the wire: invalid UTF-8, truncated, encoded digits
RAW_ESCAPES = ["%", "%Z", "%zz", "%C2", "%C2%B2", "%D9%A3", "%EF%BC%91", "%FF%FE", "%ED%A0%80",
               "%C0%80", "%00", "%0A", "%0D%0A", "+", "%2B", "%25", "%E2%80%AE", "%F4%90%80%80"]
ISSUER = "http://127.0.0.1:8000"
SP_ENTITY = "https://sp.fuzz.example"
ROLES = [f"arn:aws:iam::111122223333:role/{r}" for r in ("Admin", "Developer", "ReadOnly",
                                                        "Operator", "Nope")]
SAML_NS = 'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ' \
          'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"'

text = st.text(max_size=40)
# header values: what an HTTP server can deliver (no CR/LF, latin-1)
header_text = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=40)
junk = st.one_of(st.sampled_from(STRINGS), text, st.sampled_from(NUMBERS))


@dataclass
class Ctx:
    """Real values of the running app (tokens, credentials) the strategies may use."""

    access_token: str = "at"
    id_token: str = "idt"
    refresh_token: str = "rt"
    csrf_token: str = "csrf"
    kid: str = "k"  # the IdP's signing key ID (public, in its JWKS)
    saml_sign: Callable[[list[tuple[str, str]]], str] | None = None  # the test SP's key
    sign: Callable[..., str] | None = None
    amz_date: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ",
                                                                time.gmtime()))


# -- structured values -------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.sampled_from(STRINGS[:20]), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text, inner, max_size=4)),
    max_leaves=12)


@st.composite
def fake_jwt(draw: Any) -> str:
    """A compact JWS with arbitrary JSON header and payload (list, string, object...)."""
    header = draw(st.one_of(
        st.just({"alg": "RS256", "typ": "JWT", "kid": "k"}), st.one_of(
            st.just({"alg": "none"}),
            st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]), json_values,
                            max_size=3), json_values)))
    payload = draw(st.one_of(
        st.fixed_dictionaries({"iss": st.sampled_from(["demo-web", "demo-service", ""]),
                               "sub": st.sampled_from(["demo-web", "demo-service"]),
                               "aud": st.sampled_from([ISSUER + "/oauth2/token", ISSUER]),
                               "exp": st.sampled_from([4_000_000_000, -1, 2**70, "x"]),
                               "jti": text}),
        json_values))
    sig = draw(st.sampled_from(["", "c2ln", "A" * 342, "%%%"]))
    parts = [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), sig]
    n = draw(st.sampled_from([3, 3, 3, 2, 1, 5]))
    return ".".join(parts[:n] + ["x"] * (n - 3))


@st.composite
def signed_token(draw: Any, ctx: Ctx) -> str:
    """A token signed by the IdP itself, with arbitrary claim values (types included)."""
    if ctx.sign is None:
        return draw(fake_jwt())
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "alice", "aud": "demo-web",
                              "client_id": "demo-web", "exp": now + 600, "iat": now,
                              "jti": str(uuid.uuid4()), "scope": "openid roles",
                              "roles": ROLES[:1]}
    for name in draw(st.lists(st.sampled_from(sorted(claims) + ["nbf", "amr", "sid",
                                                                  "https://aws.amazon.com/tags"]),
                              max_size=3)):
        claims[name] = draw(json_values)
    typ = draw(st.sampled_from(["JWT", "at+jwt", "logout+jwt", "x"]))
    return ctx.sign(claims, typ=typ)


def _saml_xml(kind: str, issuer: str, instant: str, dest: str, ident: str) -> bytes:
    acs = SP_ENTITY + "/acs" if issuer == SP_ENTITY else ISSUER + "/federation/saml"
    extra = f'AssertionConsumerServiceURL="{acs}"' if kind == "AuthnRequest" else ""
    inner = "<saml:NameID>alice</saml:NameID><samlp:SessionIndex>s</samlp:SessionIndex>" \
        if kind == "LogoutRequest" else ""
    return (f'<samlp:{kind} {SAML_NS} ID="{ident}" Version="2.0" IssueInstant="{instant}" '
            f'Destination="{dest}" {extra}><saml:Issuer>{issuer}</saml:Issuer>{inner}'
            f'</samlp:{kind}>').encode()


@st.composite
def saml_message(draw: Any, deflate: bool) -> str:
    """An AuthnRequest / LogoutRequest / LogoutResponse or junk, encoded for a binding."""
    if draw(st.booleans()):
        xml = _saml_xml(
            draw(st.sampled_from(["AuthnRequest", "LogoutRequest", "LogoutResponse", "Foo"])),
            draw(st.sampled_from([SP_ENTITY, "urn:amazon:webservices", "https://sp.example",
                                  "", "é"])),
            draw(st.sampled_from([time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "2001-01-01T00:00:00Z", "x", "9999-99-99T99:99:99Z"])),
            draw(st.sampled_from([ISSUER + "/saml/sso", ISSUER + "/saml/slo",
                                  "https://evil.example/"])),
            draw(st.sampled_from(["_a1", "_a1", "", "1bad", "_" + "x" * 300])))
    else:
        xml = draw(st.sampled_from([b"", b"<", b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///'>]>"
                                    b"<x>&e;</x>", b"<a>" * 2000, b"\xff\xfe", b"plain"]))
    if deflate and draw(st.booleans()):
        co = zlib.compressobj(wbits=-15)
        xml = co.compress(xml) + co.flush()
    return base64.b64encode(xml).decode() if draw(st.booleans()) else draw(junk)


@st.composite
def signed_redirect(draw: Any, ctx: Ctx, path: str) -> str:
    """A query signed by the test SP (SAML Bindings §3.4.4.1), then perhaps tampered with:
    a forged copy of a protocol parameter under a percent-encoded name (``SAML%52equest``,
    ``Relay%53tate``) before or after it, a re-encoded name, or a changed value."""
    assert ctx.saml_sign is not None
    kind = draw(st.sampled_from(["AuthnRequest"] if path == "/saml/sso" else
                                ["LogoutRequest", "LogoutResponse"]))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    instant = draw(st.sampled_from([now, "2001-01-01T00:00:00Z", now]))
    dest = draw(st.sampled_from([ISSUER + ("/saml/sso" if kind == "AuthnRequest"
                                            else "/saml/slo"), "https://evil.example/"]))
    ident = draw(st.sampled_from(["fresh", "fresh", "_replayed"]))  # one-time IDs
    xml = _saml_xml(kind, SP_ENTITY, instant, dest,
                    "_" + uuid.uuid4().hex if ident == "fresh" else ident)
    co = zlib.compressobj(wbits=-15)
    message = base64.b64encode(co.compress(xml) + co.flush()).decode()
    name = "SAMLResponse" if kind == "LogoutResponse" else "SAMLRequest"
    query = ctx.saml_sign([(name, message), ("RelayState", draw(text))])
    tamper = draw(st.sampled_from(["none", "forged-first", "forged-last", "encoded-name",
                                   "relaystate-swap", "value"]))
    forged = quote(base64.b64encode(b"<forged/>").decode(), safe="")
    encoded = name[:4] + "%52" + name[5:] if name[4] == "R" else "SAML%52esponse"
    if tamper == "forged-first":
        return f"{encoded}={forged}&{query}"
    if tamper == "forged-last":
        return f"{query}&{encoded}={forged}"
    if tamper == "encoded-name":
        return query.replace(f"{name}=", f"{encoded}=", 1)
    if tamper == "relaystate-swap":
        return f"Relay%53tate={quote(draw(text), safe='')}&{query}"
    if tamper == "value":
        return query.replace("RelayState=", "RelayState=x", 1)
    return query
