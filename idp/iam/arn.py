"""ARNs and wildcard matching.

Implements the matching rules of the IAM User Guide:

* "IAM JSON policy elements: Action" — action names are case-insensitive; ``*`` and ``?``
  match any run of characters / any one character.
* "IAM JSON policy elements: Resource" — resource ARNs match case-sensitively, segment by
  segment: "You can use wildcard characters (* and ?) within any ARN segment (the parts
  separated by colons)"; a wildcard does not cross a ``:`` except in the resource part (the
  sixth segment, which may itself contain colons).
* "IAM JSON policy elements: Condition operators" — ``StringLike`` wildcards match anything,
  ``ArnEquals``/``ArnLike`` compare "each of the six colon-delimited components of the ARN
  separately", each with ``*``/``?`` wildcards.

Patterns arrive "marked": a wildcard written in the policy is the sentinel ``STAR``/``QMARK``
while a literal ``*`` (from ``${*}`` or a variable's value) stays a plain character, so policy
variables can never inject wildcards (see :mod:`idp.iam.variables`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

STAR = "\x00"
QMARK = "\x01"

Matcher = Callable[[str], bool]
PatternKind = Literal["action", "string", "string_ci", "arn"]

PARTITIONS = frozenset({
    "aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc",
})


def mark(text: str) -> str:
    """Turn the wildcards written in a policy into sentinels."""
    return text.replace("*", STAR).replace("?", QMARK)


def unmark(marked: str) -> str:
    """The text as written (for diagnostics)."""
    return marked.replace(STAR, "*").replace(QMARK, "?")


def _always(_: str) -> bool:
    return True


def _lower_eq(pattern: str) -> Matcher:
    def match(value: str) -> bool:
        return value.lower() == pattern

    return match


def _prefix(prefix: str, fold: bool) -> Matcher:
    if fold:
        def match_folded(value: str) -> bool:
            return value.lower().startswith(prefix)

        return match_folded
    return lambda value: value.startswith(prefix)


def _segment_regex(segment: str, last: bool) -> str:
    star, qmark = (".*", ".") if last else ("[^:]*", "[^:]")
    out = []
    for ch in segment:
        if ch == STAR:
            out.append(star)
        elif ch == QMARK:
            out.append(qmark)
        else:
            out.append(re.escape(ch))
    return "".join(out)


@lru_cache(maxsize=8192)
def compile_pattern(marked: str, kind: PatternKind) -> Matcher:
    """A matcher for one marked pattern; cached because variables re-render patterns."""
    if kind in ("action", "string_ci"):
        marked = marked.lower()
    if marked == STAR:
        return _always
    has_wild = STAR in marked or QMARK in marked
    if not has_wild:
        if kind in ("action", "string_ci"):
            return _lower_eq(marked)
        return marked.__eq__
    head = marked[:-1]
    simple_prefix = marked.endswith(STAR) and STAR not in head and QMARK not in head
    if kind == "arn":
        segments = marked.split(":", 5)
        if simple_prefix and len(segments) == 6:
            return _prefix(head, False)
        last = len(segments) - 1
        rx = ":".join(_segment_regex(s, i == last) for i, s in enumerate(segments))
        return re.compile(rx, re.DOTALL).fullmatch  # type: ignore[return-value]
    if simple_prefix:
        return _prefix(head, kind in ("action", "string_ci"))
    rx = _segment_regex(marked, True)
    flags = re.DOTALL | (re.IGNORECASE if kind in ("action", "string_ci") else 0)
    return re.compile(rx, flags).fullmatch  # type: ignore[return-value]


def matches(marked: str, kind: PatternKind, value: str) -> bool:
    """Whether ``value`` matches the marked pattern."""
    return bool(compile_pattern(marked, kind)(value))


@dataclass(frozen=True, slots=True)
class Arn:
    """``arn:partition:service:region:account-id:resource`` (AWS General Reference, "ARNs")."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn | None:
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            return None
        return cls(parts[1], parts[2], parts[3], parts[4], parts[5])

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


ACCOUNT_ID = re.compile(r"^\d{12}$")
_NAME = r"[\w+=,.@-]+"
_PATH = r"(?:/[\x21-\x7e]*?)?/"
# Principal ARNs a policy may name (IAM User Guide, "AWS JSON policy elements: Principal").
AWS_PRINCIPAL = re.compile(
    rf"^arn:(?P<p>[a-z-]+):(?:iam::(?P<acct>\d{{12}}):(?:root|user{_PATH}{_NAME}|role{_PATH}{_NAME})"
    rf"|sts::(?P<acct2>\d{{12}}):(?:assumed-role/{_NAME}/{_NAME}|federated-user/{_NAME}))$"
)
UNIQUE_ID = re.compile(r"^A[A-Z]{3}[A-Z0-9]{16,}$")
PROVIDER_ARN = re.compile(
    r"^arn:[a-z-]+:iam::\d{12}:(?:saml-provider/[\w.+=,@-]+|oidc-provider/[^\s*?]+)$"
)
HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d+)?(?:/[^\s*?]*)?$")
WEB_IDENTITY_PROVIDERS = frozenset({
    "accounts.google.com", "cognito-identity.amazonaws.com", "graph.facebook.com",
    "www.amazon.com",
})


def canonical_aws_principal(value: str) -> str:
    """Account IDs are the account's root ARN ("Specifying a principal", AWS account principals)."""
    if ACCOUNT_ID.match(value):
        return f"arn:aws:iam::{value}:root"
    return value


@lru_cache(maxsize=16384)
def account_of(arn: str) -> str | None:
    """The account ID of an ARN, or ``None``."""
    parsed = Arn.parse(arn)
    if parsed is None or not ACCOUNT_ID.match(parsed.account):
        return None
    return parsed.account
