"""Hypothesis strategies for requests to any route.

A request starts from the route's protocol parameters, each with a plausible value (a real
client ID, a real token, a well-formed SigV4 query), then mutates a few of them: dropped,
replaced by a boundary value (empty, huge, Unicode digits, NUL and control characters, invalid
UTF-8 escapes, overflowing numbers, impossible dates), duplicated, or sent under a
percent-encoded name (``SAML%52equest``).  Plausible values get the request past the first
checks so the deeper code is reached; the mutations are where bugs hide.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from hypothesis import strategies as st

from tests.fuzz.known import ASSERTION_TYPE
from tests.fuzz.model import FuzzRequest
from tests.fuzz.values import (
    DATES,
    NUMBERS,
    RAW_ESCAPES,
    ROLES,
    STRINGS,
    Ctx,
    Strat,
    b64url,
    fake_jwt,
    header_text,
    json_values,
    junk,
    saml_message,
    signed_redirect,
    signed_token,
    text,
)

# -- protocol parameters per route -------------------------------------------------------------

def valid(good: list[str], bad: list[str]) -> Strat:
    """Mostly a valid value, sometimes one of ``bad`` (the other parameters' mutations add
    more): a request must get past its first checks for the deeper code to be fuzzed."""
    # (hypothesis favours the ends of a range: a middle value picks ``bad``)
    return st.integers(0, 7).flatmap(
        lambda i: st.sampled_from(bad) if i == 3 else st.sampled_from(good))


CLIENT_AUTH_ROUTES = ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke",
                      "/oauth2/device_authorization")
BASIC = {cid: "Basic " + base64.b64encode(f"{cid}:{cid}-secret".encode()).decode()
         for cid in ("demo-web", "demo-service")}


@st.composite
def client_auth(draw: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """One client authentication method of RFC 6749 §2.3.1 / RFC 7523 §2.2 (or none, or
    two at once): the ``Authorization`` header and the form fields it needs."""
    how = draw(st.sampled_from(["assertion", "basic", "post", "assertion", "none", "two",
                                "assertion"]))
    cid = draw(st.sampled_from(["demo-web", "demo-service", "demo-cli", "nope"]))
    secret = draw(st.sampled_from([f"{cid}-secret", "x", ""]))
    header = {"Authorization": BASIC.get(cid, draw(st.sampled_from(AUTH_HEADERS)))}
    post = [("client_id", cid), ("client_secret", secret)]
    if how == "basic":
        return header, []
    if how == "post":
        return {}, post
    if how == "assertion":
        fields = [("client_assertion_type", ASSERTION_TYPE),
                  ("client_assertion", draw(fake_jwt()))]
        return {}, fields + ([("client_id", cid)] if draw(st.booleans()) else [])
    if how == "two":
        return header, post
    return {}, [("client_id", cid)] if draw(st.booleans()) else []


@st.composite
def forged_token(draw: Any, ctx: Ctx) -> str:
    """A real token's payload under a JOSE header naming the IdP's key, with one member
    replaced by any JSON value (``crit``, ``alg``, ``b64``...), and a garbage signature."""
    header: dict[str, Any] = {"alg": "RS256", "kid": ctx.kid, "typ": "at+jwt"}
    name = draw(st.sampled_from(["crit", "alg", "kid", "typ", "b64", "jku", "x5c", "cty"]))
    header[name] = draw(json_values)
    payload = draw(st.sampled_from([ctx.access_token, ctx.id_token])).split(".")[1]
    return f"{b64url(json.dumps(header).encode())}.{payload}.c2ln"


def _tokens(ctx: Ctx) -> Strat:
    return st.one_of(st.sampled_from([ctx.access_token, ctx.id_token, ctx.refresh_token]),
                     signed_token(ctx), forged_token(ctx), fake_jwt())


REDIRECTS = ["http://127.0.0.1:8400/callback", "http://127.0.0.1/callback",
             "http://127.0.0.1:9/callback", "http://[::1]:9/callback",
             "http://evil.com@127.0.0.1:9/callback", "http://127.0.0.1:/callback",
             "HTTP://127.0.0.1/callback", "http://127.0.0.1:8400/callback#f",
             "https://evil.example/", "javascript:alert(1)"]


def _authorize(ctx: Ctx) -> dict[str, Strat]:
    return {
        "client_id": valid(["demo-cli"], ["demo-web", "nope"]),
        "redirect_uri": valid(REDIRECTS[1:3], REDIRECTS),
        "response_type": valid(["code"], ["token", "code id_token", "none"]),
        "scope": valid(["openid", "openid profile email groups roles offline_access"],
                       ["roles", "openid bogus"]),
        "state": text, "nonce": text,
        "code_challenge": valid(["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"], ["short"]),
        "code_challenge_method": valid(["S256"], ["plain", "s256"]),
        "max_age": st.sampled_from(["²", "0", "300", "³", "①", "٣", "１", "-1", "", "1" * 30]),
        "prompt": st.sampled_from(["none", "login", "consent", "select_account", "login none"]),
        "response_mode": st.sampled_from(["query", "form_post", "fragment", "x"]),
        "login_hint": text, "id_token_hint": _tokens(ctx), "resume": text,
        "request": fake_jwt(), "request_uri": st.just("https://evil.example/r"),
        "decision": st.sampled_from(["allow", "deny"]),
    }


def _token(ctx: Ctx) -> dict[str, Strat]:
    return {
        "grant_type": valid(["client_credentials"], [
            "authorization_code", "refresh_token", "password",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"]),
        "code": text, "redirect_uri": st.sampled_from(REDIRECTS),
        "code_verifier": st.sampled_from(["dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "a"]),
        "refresh_token": _tokens(ctx), "device_code": text,
        "scope": st.sampled_from(["roles", "openid", "bogus", "roles roles"]),
        "resource": text, "audience": text,
    }


def _introspect(ctx: Ctx) -> dict[str, Strat]:
    return {"token": _tokens(ctx),
            "token_type_hint": st.sampled_from(["access_token", "refresh_token", "x"])}


SIGV4_BAD = {
    "Date": DATES,
    "Expires": NUMBERS,
    "Algorithm": ["AWS4-HMAC-SHA1", "", "aws4-hmac-sha256"],
    "Credential": ["", "a/b", "ASIAFUZZ//us-east-1/sts/aws4_request", "/////", "x" * 300],
    "SignedHeaders": ["", ";;", "x-amz-date", "HOST", "host;host"],
    "Signature": ["", "zz", "0" * 63, "é"],
}


@st.composite
def sigv4(draw: Any, ctx: Ctx, service: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """AWS SigV4 authentication with well-formed fields but one (or none) replaced by a
    boundary value: presigned query parameters, or the ``Authorization`` header
    (AWS General Reference, "Signature Version 4 signing process")."""
    f = {"Algorithm": "AWS4-HMAC-SHA256", "Date": ctx.amz_date, "Expires": "300",
         "SignedHeaders": "host", "Signature": "0" * 64}
    bad = draw(st.sampled_from([*SIGV4_BAD, None]))
    if bad is not None:
        f[bad] = draw(st.sampled_from(SIGV4_BAD[bad]))
    # the credential scope's date follows the request date, so that date gets parsed
    f.setdefault("Credential",
                 f"ASIAFUZZFUZZFUZZFUZZ/{f['Date'][:8]}/us-east-1/{service}/aws4_request")
    if draw(st.booleans()):
        return [(quote(f"X-Amz-{k}", safe=""), quote(v, safe="")) for k, v in f.items()], {}
    header = (f"{f['Algorithm']} Credential={f['Credential']}, "
              f"SignedHeaders={f['SignedHeaders']};x-amz-date, Signature={f['Signature']}")
    return [], {"Authorization": header, "X-Amz-Date": f["Date"]}


def _sts(ctx: Ctx) -> dict[str, Strat]:
    return {
        "Action": valid([
            "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "AssumeRole",
            "GetCallerIdentity", "GetSessionToken", "GetAccessKeyInfo",
            "DecodeAuthorizationMessage"], ["GetFederationToken", "assumerole", ""]),
        "Version": valid(["2011-06-15"], ["2010-05-08", ""]),
        "RoleArn": st.sampled_from(ROLES + ["arn:aws:iam::111122223333:role/", "arn:"]),
        "RoleSessionName": st.sampled_from(["fuzz", "a", "x" * 65, "bad name"]),
        "WebIdentityToken": _tokens(ctx),
        "SAMLAssertion": saml_message(False),
        "PrincipalArn": st.sampled_from(["arn:aws:iam::111122223333:saml-provider/demo-idp"]),
        "DurationSeconds": st.sampled_from(["900", "3600", "43201", *NUMBERS]),
        "Policy": st.one_of(st.builds(json.dumps, json_values),
                            st.just('{"Version":"2012-10-17","Statement":[]}')),
        "PolicyArns.member.1.arn": st.sampled_from(["arn:aws:iam::aws:policy/x", ""]),
        "Tags.member.1.Key": text, "Tags.member.1.Value": text,
        "TransitiveTagKeys.member.1": text, "SourceIdentity": text, "ExternalId": text,
        "SerialNumber": text, "TokenCode": st.sampled_from(["123456", "²²²²²²"]),
        "AccessKeyId": st.sampled_from(["ASIA" + "A" * 16, "AKIAIOSFODNN7EXAMPLE"]),
        "EncodedMessage": text, "ProviderId": text,
    }


def _iam(ctx: Ctx) -> dict[str, Strat]:
    policy = st.one_of(
        st.builds(json.dumps, json_values),
        st.builds(lambda a, r, c: json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": a, "Resource": r, "Condition": c}]}),
            st.one_of(text, st.just("*")), st.one_of(text, st.just("*")), json_values))
    return {
        "Action": valid(["SimulateCustomPolicy", "SimulatePrincipalPolicy", "GetRole",
                         "ListRoles"], ["CreateRole", ""]),
        "Version": valid(["2010-05-08"], ["2011-06-15"]),
        "PolicyInputList.member.1": policy,
        "PermissionsBoundaryPolicyInputList.member.1": policy,
        "ResourcePolicy": policy,
        "PolicySourceArn": st.sampled_from(ROLES),
        "ActionNames.member.1": st.sampled_from(["iam:GetRole", "s3:GetObject", "*", ""]),
        "ResourceArns.member.1": st.sampled_from(["*", "arn:aws:s3:::b/k", ""]),
        "ContextEntries.member.1.ContextKeyName": st.sampled_from(["aws:SourceIp", "x"]),
        "ContextEntries.member.1.ContextKeyValues.member.1": junk,
        "ContextEntries.member.1.ContextKeyType": st.sampled_from([
            "string", "numeric", "date", "boolean", "ip", "binary", "stringList", "x"]),
        "CallerArn": st.sampled_from(ROLES),
        "RoleName": st.sampled_from(["Admin", "ReadOnly", "", "x" * 200]),
        "PathPrefix": text, "Marker": text, "MaxItems": st.sampled_from(NUMBERS),
    }


def _saml(ctx: Ctx, deflate: bool) -> dict[str, Strat]:
    return {
        "SAMLRequest": saml_message(deflate), "SAMLResponse": saml_message(deflate),
        "RelayState": text,
        "SigAlg": st.sampled_from(["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                                   "http://www.w3.org/2000/09/xmldsig#rsa-sha1", ""]),
        "Signature": st.sampled_from(["", "AAAA", "%%%", base64.b64encode(b"x" * 256).decode()]),
        "resume": text, "sp": st.sampled_from(["urn:amazon:webservices", "", "nope"]),
    }


# the parameters a request of the route needs: present (with a plausible value) unless mutated
CORE: dict[str, set[str]] = {
    "/oauth2/authorize": {"client_id", "redirect_uri", "response_type", "scope",
                          "code_challenge", "code_challenge_method", "state", "max_age"},
    "/oauth2/token": {"grant_type"}, "/oauth2/introspect": {"token"},
    "/oauth2/revoke": {"token"}, "/sts": {"Action", "Version", "RoleArn", "RoleSessionName"},
    "/iam": {"Action", "Version"}, "/saml/sso": {"SAMLRequest"}, "/saml/slo": {"SAMLRequest"},
    "/saml/idp-initiated": {"sp"}, "/login": {"username", "password"}, "/device": {"user_code"},
    "/federation/saml": {"SAMLResponse"},
}


def route_params(rule: str, method: str, ctx: Ctx) -> dict[str, Strat]:
    """The protocol parameters of a route, with plausible values."""
    if rule in ("/saml/sso", "/saml/slo", "/saml/idp-initiated"):
        return _saml(ctx, method == "GET")
    table: dict[str, Callable[[Ctx], dict[str, Strat]]] = {
        "/oauth2/authorize": _authorize, "/oauth2/token": _token,
        "/oauth2/introspect": _introspect, "/oauth2/revoke": _introspect,
        "/oauth2/device_authorization": lambda c: {"scope": text},
        "/oauth2/userinfo": lambda c: {"access_token": _tokens(c)},
        "/oauth2/logout": lambda c: {
            "id_token_hint": _tokens(c), "client_id": st.sampled_from(["demo-web", "x"]),
            "post_logout_redirect_uri": st.sampled_from(REDIRECTS), "state": text},
        "/device": lambda c: {
            "user_code": st.sampled_from(["BCDFGHJK", "BCDF-GHJK", "", "²" * 8, "a" * 100]),
            "decision": st.sampled_from(["approve", "deny", "x"])},
        "/login": lambda c: {
            "username": st.sampled_from(["alice", "carol", "", "a\x00", "x" * 300]),
            "password": st.sampled_from(["alice-password", "wrong", "", "p" * 2000]),
            "next": st.sampled_from(["/account", "//evil.example", "http://evil.example",
                                     "/\\evil", "javascript:x"]),
            "reauth": st.sampled_from(["1", "0", ""])},
        "/sts": _sts, "/iam": _iam,
        "/federation/saml": lambda c: {"SAMLResponse": saml_message(False),
                                       "role": st.sampled_from(ROLES)},
    }
    make = table.get(rule)
    return make(ctx) if make else {}


# -- mutations and encodings -------------------------------------------------------------------

def encode_value(value: str) -> str:
    return quote(value, safe="")


@st.composite
def encoded_name(draw: Any, name: str) -> str:
    """The name as sent: plain, one letter percent-encoded (``SAML%52equest``), all encoded,
    or with a case or whitespace change."""
    how = draw(st.sampled_from(["plain", "plain", "one", "all", "lower", "space"]))
    if how == "one" and name:
        i = draw(st.integers(0, len(name) - 1))
        return quote(name[:i], safe="") + f"%{ord(name[i]):02X}" + quote(name[i + 1:], safe="")
    if how == "all":
        return "".join(f"%{b:02X}" for b in name.encode())
    if how == "lower":
        return quote(name.lower(), safe="")
    if how == "space":
        return quote(name, safe="") + "+"
    return quote(name, safe="")


@st.composite
def pairs_for(draw: Any, params: dict[str, Strat], core: set[str] | frozenset[str] = frozenset()
              ) -> list[tuple[str, str]]:
    """Wire-encoded ``name=value`` pairs: the route's parameters, most with plausible values,
    a few mutated, plus junk parameters."""
    out: list[tuple[str, str]] = []
    names = sorted(params)
    mutated = set(draw(st.lists(st.sampled_from(names), max_size=2))) if names else set()
    for name in names:
        if name not in core and name not in mutated and draw(st.integers(0, 3)) != 1:
            continue
        value = encode_value(draw(params[name]))
        wire = quote(name, safe="")
        if name in mutated:
            kind = draw(st.sampled_from(["drop", "boundary", "raw", "dup", "name", "empty"]))
            if kind == "drop":
                continue
            if kind == "boundary":
                value = encode_value(draw(st.sampled_from(
                    NUMBERS + DATES + STRINGS if name not in ("max_age",) else NUMBERS)))
            elif kind == "raw":
                value = draw(st.sampled_from(RAW_ESCAPES)) + value[:20]
            elif kind == "dup":
                out.append((draw(encoded_name(name)), encode_value(draw(junk))))
            elif kind == "name":
                wire = draw(encoded_name(name))
            else:
                value = ""
        out.append((wire, value))
    for _ in range(draw(st.integers(0, 2))):
        out.append((draw(st.one_of(st.builds(encode_value, text),
                                   st.sampled_from(RAW_ESCAPES))),
                    draw(st.one_of(st.builds(encode_value, junk),
                                   st.sampled_from(RAW_ESCAPES)))))
    return draw(st.permutations(out)) if len(out) < 12 and draw(st.booleans()) else out


def join(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" if v or k else "=" for k, v in pairs)


# -- bodies ------------------------------------------------------------------------------------

CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded",
                 "application/x-www-form-urlencoded; charset=utf-8",
                 "application/x-www-form-urlencoded; charset=latin-1", "application/json",
                 "multipart/form-data", "multipart/form-data; boundary=", "text/plain",
                 "application/xml", "text/xml", None, "application/bogus", "x/y; a=\x01",
                 "APPLICATION/X-WWW-FORM-URLENCODED"]
HUGE = {
    "deep-list": b"[" * 100_000,
    "deep-object": b'{"a":' * 30_000,
    "deep-closed": b"[" * 3000 + b"]" * 3000,
    "big-object": json.dumps({f"k{i}": i for i in range(15_000)}).encode(),
    "big-form": b"&".join(b"f%d=%d" % (i, i) for i in range(5000)),
    "over-limit": b"a=" + b"x" * (300 * 1024),
    "long-value": b"token=" + b"A" * 200_000,
}


def _multipart(pairs: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "fuzzb0undary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in pairs]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), \
        f"multipart/form-data; boundary={boundary}"


@st.composite
def body_for(draw: Any, pairs: list[tuple[str, str]], rule: str, ctx: Ctx
             ) -> tuple[bytes, str | None]:
    """A body in some content type carrying ``pairs`` (or a huge/nested/JSON body)."""
    if rule == "/sts/decide" and draw(st.integers(0, 3)) > 0:
        return draw(decide_body(ctx)), "application/json"
    if draw(st.integers(0, 9)) == 0:
        return HUGE[draw(st.sampled_from(list(HUGE)))], draw(st.sampled_from(CONTENT_TYPES))
    ctype = draw(st.one_of(st.just(CONTENT_TYPES[0]), st.sampled_from(CONTENT_TYPES)))
    form = join(pairs).encode("utf-8", "surrogatepass")
    if ctype is None or "urlencoded" in ctype.lower() or ctype in ("text/plain",):
        return form, ctype
    if ctype == "application/json":
        doc = {unquote(k): unquote(v) for k, v in pairs}
        return json.dumps(draw(st.one_of(st.just(doc), json_values))).encode(), ctype
    if ctype.startswith("multipart/form-data"):
        body, full = _multipart([(unquote(k), unquote(v)) for k, v in pairs])
        return body, full if ctype.endswith("form-data") else ctype
    if "xml" in ctype:
        return draw(st.sampled_from([b"<a/>", b"<?xml version='1.0'?><a>" + form + b"</a>",
                                     b"<!DOCTYPE a [<!ENTITY b 'c'>]><a>&b;</a>"])), ctype
    return form, ctype


@st.composite
def decide_body(draw: Any, ctx: Ctx) -> bytes:
    """A decision query (JSON members of :class:`idp.sts.DecisionQuery`), some mutated."""
    query = join(draw(sigv4(ctx, "s3"))[0])
    request = draw(st.fixed_dictionaries({}, optional={
        "method": st.sampled_from(["GET", "POST", ""]), "path": st.sampled_from(["/", "/b/k"]),
        "query": st.one_of(st.just(query), text), "headers": st.one_of(
            st.fixed_dictionaries({"host": st.just("s3.amazonaws.com"),
                                   "x-amz-date": st.sampled_from([ctx.amz_date, *DATES]),
                                   "authorization": st.sampled_from([
                                       "AWS4-HMAC-SHA256 Credential=ASIAFUZZ/" +
                                       ctx.amz_date[:8] + "/us-east-1/s3/aws4_request, "
                                       "SignedHeaders=host;x-amz-date, Signature=00",
                                       "AWS4-HMAC-SHA256", ""])}),
            json_values),
        "body_b64": st.sampled_from(["", "AAAA", "%%%", "QQ"])}))
    doc: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={
        "action": st.sampled_from(["s3:GetObject", "iam:GetRole", ""]),
        "resource": st.sampled_from(["*", "arn:aws:s3:::b/k"]),
        "context": json_values, "service": st.sampled_from(["s3", "sts", ""]),
        "source_ip": st.sampled_from(["127.0.0.1", "::1", "x", ""]),
        "secure": st.booleans(), "client_id": st.sampled_from(["demo-web", "demo-service"]),
        "client_secret": st.sampled_from(["demo-web-secret", "x"]),
        "client_assertion": fake_jwt(), "client_assertion_type": st.just(ASSERTION_TYPE)}))
    doc["request"] = request
    for name in draw(st.lists(st.sampled_from(sorted(doc)), max_size=2)):
        doc[name] = draw(json_values)
    return json.dumps(doc).encode()


# -- the request -------------------------------------------------------------------------------

AUTH_HEADERS = [
    "Basic " + base64.b64encode(b"demo-web:demo-web-secret").decode(),
    "Basic " + base64.b64encode(b"demo-service:demo-service-secret").decode(),
    "Basic " + base64.b64encode(b"demo-web:wrong").decode(),
    "Basic %%%", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Basic ", "Bearer ",
    "Bearer x", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host,"
    " Signature=0", "AWS4-HMAC-SHA256 Credential=ASIAFUZZ/20261399/us-east-1/sts/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=00", "Digest x", "\x00"]


@st.composite
def headers_for(draw: Any, ctx: Ctx) -> dict[str, str]:
    h: dict[str, str] = {}
    if draw(st.booleans()):
        h["Authorization"] = draw(st.one_of(
            st.sampled_from(AUTH_HEADERS),
            st.builds(lambda t: "Bearer " + t, _tokens(ctx))))
    if draw(st.integers(0, 3)) == 0:
        h["X-Amz-Date"] = draw(st.sampled_from([ctx.amz_date, *DATES]))
    if draw(st.integers(0, 5)) == 0:
        h["X-Amz-Security-Token"] = draw(header_text)
    if draw(st.integers(0, 5)) == 0:
        h["X-Amz-Content-Sha256"] = draw(st.sampled_from(["UNSIGNED-PAYLOAD", "0" * 64, "é"]))
    return h


@st.composite
def fuzz_request(draw: Any, rule: str, methods: Strat, ctx: Ctx) -> FuzzRequest:
    """Any request to ``rule``: one of its methods or a method it does not allow."""
    method = draw(methods)
    path = rule
    if "<" in rule:
        path = rule.split("<", 1)[0] + draw(st.sampled_from([
            "style.css", "saml_post.js", "nope", "..%2f..%2fpyproject.toml", "%00", "é",
            "a" * 300]))
    params = route_params(rule, method, ctx)
    pairs = draw(pairs_for(params, CORE.get(rule, set())))
    req = FuzzRequest(rule, method, path, headers=draw(headers_for(ctx)),
                      signed_in=draw(st.booleans()), csrf=draw(st.booleans()))
    if rule in CLIENT_AUTH_ROUTES:
        req.headers.pop("Authorization", None)
        header, fields = draw(client_auth())
        req.headers.update(header)
        pairs += fields
    if req.csrf:
        pairs.append(("csrf_token", ctx.csrf_token))
    auth_query: list[tuple[str, str]] = []
    if rule in ("/sts", "/iam") and draw(st.booleans()):
        auth_query, auth_headers = draw(sigv4(ctx, rule.strip("/")))
        req.headers.update(auth_headers)
    if method in ("GET", "HEAD", "OPTIONS", "DELETE") and rule != "/sts/decide":
        req.query = join(pairs + auth_query)
        if rule in ("/saml/sso", "/saml/slo") and ctx.saml_sign and draw(st.booleans()):
            req.query = draw(signed_redirect(ctx, rule))
        return req
    where = {4: "query", 5: "split"}.get(draw(st.integers(0, 9)), "body")
    if where == "query":
        pairs, query = [], pairs
    elif where == "split" and pairs:
        cut = draw(st.integers(0, len(pairs)))
        pairs, query = pairs[cut:], pairs[:cut]
    else:
        query = []
    req.query = join(query + auth_query)
    req.body, req.content_type = draw(body_for(pairs, rule, ctx))
    if rule in ("/sts", "/iam") and req.content_type is not None \
            and "urlencoded" in req.content_type and draw(st.integers(0, 3)) == 0:
        req.sigv4 = draw(st.sampled_from(["header", "presign"]))
    return req
