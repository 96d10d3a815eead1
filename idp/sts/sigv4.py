"""Signature Version 4 verification (AWS General Reference / IAM User Guide, "Create a signed
AWS API request": canonical request, string to sign, signing key, signature; "Authentication
methods": ``Authorization`` header or query string parameters).

:func:`verify` checks a request signed with the header (``Authorization: AWS4-HMAC-SHA256
Credential=…, SignedHeaders=…, Signature=…``) or presigned (``X-Amz-Algorithm`` …
``X-Amz-Signature`` in the query), with the credential scope's date equal to the request date,
``host`` and ``x-amz-date`` signed, a clock skew of at most 5 minutes (presigned: within
``X-Amz-Expires``), the scope's region equal to the configured one, ``X-Amz-Security-Token``
for temporary credentials, and the signature compared in constant time.

Every number and date of the signature is read ASCII-strict (``[0-9]``, never ``str.isdigit``
or ``\\d``, which admit other scripts' digits) and bounded before it is converted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from idp.sts.credentials import CredentialStore, LongTermKey, Session
from idp.sts.errors import StsError, err

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = 300
MAX_EXPIRES = 604800
UNSIGNED = "UNSIGNED-PAYLOAD"
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_EXPIRES = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class SignedParts:
    """The SigV4-relevant parts of an HTTP request (headers with lower-case names)."""

    method: str
    path: str
    query: str  # raw, undecoded
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Caller:
    """Who signed: a temporary session or a long-term key; and the scope used."""

    access_key_id: str
    session: Session | None
    long_term: LongTermKey | None
    region: str
    service: str

    @property
    def arn(self) -> str:
        if self.session is not None:
            return self.session.arn
        assert self.long_term is not None
        return self.long_term.principal_arn

    @property
    def account(self) -> str:
        return self.session.account if self.session else self.arn.split(":")[4]


def _incomplete(message: str) -> StsError:
    """A signature that does not conform: ``IncompleteSignature`` (400), the code the STS and
    IAM API References list under "Common Errors" for it (neither lists S3's
    ``AuthorizationQueryParametersError``), for the header and the query-string form alike."""
    return err("IncompleteSignature", message, 400)


def _mismatch(debug: str = "") -> StsError:
    return err("SignatureDoesNotMatch", "The request signature we calculated does not match the "
               "signature you provided. Check your AWS Secret Access Key and signing method. "
               "Consult the service documentation for details.", 403, debug)


def _pairs(query: str) -> list[tuple[str, str]]:
    out = []
    for part in query.split("&"):
        if part:
            k, _, v = part.partition("=")
            out.append((unquote(k.replace("+", " ")), unquote(v.replace("+", " "))))
    return out


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Sorted by encoded name then value; RFC 3986 unreserved characters kept."""
    enc = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def canonical_path(path: str) -> str:
    """The URI-encoded path: non-S3 services encode the (already encoded) path once more; S3
    signs the path as sent."""
    return quote(path or "/", safe="/~")


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _parse_authorization(value: str) -> dict[str, str]:
    m = _AUTH.match(value.strip())
    if not m:
        raise _incomplete("Authorization header requires 'AWS4-HMAC-SHA256' algorithm")
    fields: dict[str, str] = {}
    for part in m.group(1).split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            fields[k] = v.strip()
    for need in ("Credential", "SignedHeaders", "Signature"):
        if need not in fields:
            raise _incomplete(f"Authorization header requires '{need}' parameter.")
    return fields


def is_signed(parts: SignedParts) -> bool:
    return "authorization" in parts.headers or "X-Amz-Signature=" in parts.query


def _request_time(amz_date: str) -> float:
    """``X-Amz-Date`` in ISO 8601 basic format (``YYYYMMDD'T'HHMMSS'Z'``), as a timestamp."""
    if not _DATE.fullmatch(amz_date):
        raise _incomplete("Authorization requires a valid X-Amz-Date (ISO 8601 basic format)")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:  # 20261399T999999Z: the right shape, no such day or time
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'") \
            from None
    return when.timestamp()


def _expires(value: str) -> int:
    """``X-Amz-Expires``: whole seconds, 1 to 604800 (7 days)."""
    if not _EXPIRES.fullmatch(value) or not 0 < int(value) <= MAX_EXPIRES:
        raise _incomplete(f"X-Amz-Expires must be between 1 and {MAX_EXPIRES} seconds")
    return int(value)


def _wrong_region(region: str, expected: str) -> StsError:
    """A scope for another region: ``SignatureDoesNotMatch`` (403), the code of signature errors
    (IAM User Guide, "Troubleshoot Signature Version 4 signing for AWS API requests"), with
    the message AWS's regional endpoints send, "Credential should be scoped to a valid region"
    (S3 alone answers ``AuthorizationHeaderMalformed``)."""
    return err("SignatureDoesNotMatch", f"Credential should be scoped to a valid region, not "
               f"'{region[:32]}'. Sign for '{expected}'", 403)


def verify(parts: SignedParts, credentials: CredentialStore, now: Callable[[], float],
           service: str | None = None, region: str | None = None) -> Caller:
    """Authenticate a signed request; raise the AWS error when it is not.  ``region`` is the
    one region a credential scope may name (``None``: any)."""
    pairs = _pairs(parts.query)
    presigned = any(k == "X-Amz-Signature" for k, _ in pairs)
    if presigned:
        q = dict(pairs)
        if q.get("X-Amz-Algorithm") != ALGORITHM:
            raise _incomplete("X-Amz-Algorithm must be AWS4-HMAC-SHA256")
        for need in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"):
            if not q.get(need):
                raise _incomplete(f"Query-string authentication requires the {need} parameter")
        credential, signed_headers = q["X-Amz-Credential"], q["X-Amz-SignedHeaders"]
        signature, amz_date = q["X-Amz-Signature"], q["X-Amz-Date"]
        token = q.get("X-Amz-Security-Token")
        canon_pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
        expires = _expires(q["X-Amz-Expires"])
    else:
        auth = parts.headers.get("authorization")
        if not auth:
            raise err("MissingAuthenticationToken", "Request is missing Authentication Token",
                      403)
        fields = _parse_authorization(auth)
        credential, signed_headers = fields["Credential"], fields["SignedHeaders"]
        signature = fields["Signature"]
        amz_date = parts.headers.get("x-amz-date", "")
        token = parts.headers.get("x-amz-security-token")
        canon_pairs = pairs
        expires = 0
    when = _request_time(amz_date)
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise _incomplete(f"Credential should be scoped to a valid region. '{credential[:80]}'")
    akid, date, scope_region, svc = scope[:4]
    if date != amz_date[:8]:
        raise _mismatch("scope date differs from X-Amz-Date")
    if service is not None and svc != service:
        raise _incomplete(f"Credential should be scoped to correct service: '{service}'.")
    if region is not None and scope_region != region:
        raise _wrong_region(scope_region, region)
    names = signed_headers.split(";")
    if "host" not in names or (not presigned and "x-amz-date" not in names):
        raise _incomplete("SignedHeaders must include host and x-amz-date")
    if token and not presigned and "x-amz-security-token" not in names:
        raise _incomplete("SignedHeaders must include x-amz-security-token")
    t = now()
    if presigned:
        if when > t + MAX_SKEW or when + expires < t:
            raise err("AccessDenied", "Request has expired", 403)
    elif abs(t - when) > MAX_SKEW:
        raise _mismatch_time(amz_date, t)
    session, long_term = credentials.find(akid, token)
    secret = session.secret if session else long_term.secret_access_key  # type: ignore[union-attr]
    headers = []
    for name in names:
        if name not in parts.headers:
            raise _mismatch(f"signed header `{name}` missing")
        headers.append(f"{name}:{' '.join(parts.headers[name].split())}\n")
    payload = hashlib.sha256(parts.body).hexdigest()
    claimed = parts.headers.get("x-amz-content-sha256")
    s3 = svc == "s3"
    if s3 and claimed == UNSIGNED:  # S3 may leave the body unsigned (the caller's choice)
        payload = UNSIGNED
    elif claimed is not None and claimed.lower() != payload:
        raise _mismatch("x-amz-content-sha256 differs from the body")
    key = signing_key(secret, date, scope_region, svc)
    candidates = [(parts.method.upper(), payload)]
    if presigned and not parts.body:
        # botocore presigns Query API operations with their modelled method (POST) although
        # the URL is then fetched with GET; S3-style presigning uses UNSIGNED-PAYLOAD.
        candidates += [("POST", payload), (parts.method.upper(), UNSIGNED)]
    for method, body_hash in candidates:
        creq = "\n".join([method, parts.path if s3 else canonical_path(parts.path),
                          canonical_query(canon_pairs), "".join(headers), signed_headers,
                          body_hash])
        sts = "\n".join([ALGORITHM, amz_date, f"{date}/{scope_region}/{svc}/aws4_request",
                         hashlib.sha256(creq.encode()).hexdigest()])
        expected = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        # as bytes: compare_digest refuses str with non-ASCII characters (a TypeError)
        if hmac.compare_digest(expected.encode(), signature.lower().encode()):
            return Caller(akid, session, long_term, scope_region, svc)
    raise _mismatch("signature differs")


def _mismatch_time(amz_date: str, now: float) -> StsError:
    server = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return err("SignatureDoesNotMatch", f"Signature expired: {amz_date} is now earlier than "
               f"{server} (+/- 5 min.)" if amz_date < server else
               f"Signature not yet current: {amz_date} is still later than {server} "
               "(+/- 5 min.)", 403)
