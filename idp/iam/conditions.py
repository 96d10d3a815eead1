"""Condition operators (IAM User Guide, "IAM JSON policy elements: Condition operators").

Each operator is resolved once, at compile time, to a value parser and a comparison function.
Rules implemented here, with the section of that page (or of "Single-valued vs. multivalued
context keys") they come from:

* several values for one key are OR-ed; a negated operator (``StringNotEquals``…) is true when
  the context value matches *none* of them ("Creating a condition with multiple keys or values");
* a key missing from the request context makes the condition false, except for negated
  operators, where it is true ("If the key that you specify in a policy condition is not present
  in the request context…"); ``...IfExists`` makes a missing key true; ``Null`` tests presence;
* ``ForAllValues:`` is true when every context value matches, and also when the key is missing
  or its set is empty; ``ForAnyValue:`` needs at least one matching value and is false for a
  missing key or an empty set ("Set operators for multivalued context keys");
* a multivalued key used without a set operator matches when any of its values matches
  (negated: when none does);
* values compare case-sensitively unless the operator says ``IgnoreCase``; ``Bool`` compares
  ``true``/``false`` case-insensitively; ``Date*`` takes ISO 8601 dates or epoch seconds;
  ``IpAddress`` takes IPv4 and IPv6 CIDRs; ``ArnEquals`` and ``ArnLike`` both match ARN segment
  by segment with wildcards; policy variables are allowed in ``String*`` and ``Arn*`` values.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idp.iam.arn import compile_pattern
from idp.iam.variables import Context, parse_template

Pred = Callable[[str], bool]


def parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def parse_date(text: str) -> float | None:
    """ISO 8601 date/time (UTC when no offset) or epoch seconds, as epoch seconds."""
    text = text.strip()
    if not text:
        return None
    if text.lstrip("-").replace(".", "", 1).isdigit() and "-" not in text[1:]:
        return float(text)
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _parse_ip(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _ip_in(net: Any, value: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) in net
    except ValueError:
        return False


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_arn(value: str) -> bool:
    return value.count(":") >= 5


@dataclass(frozen=True, slots=True)
class Family:
    """How one operator parses policy values and compares one context value with one."""

    parse: Callable[[str], Any]          # policy value -> parsed (None: never matches)
    convert: Callable[[str], Any]        # context value -> comparable (None: no match)
    compare: Callable[[Any, Any], bool]  # (parsed policy value, converted context value)
    templated: bool = False              # policy variables allowed
    pattern: str | None = None           # wildcard pattern kind, if the values are patterns


def _ident(x: str) -> str:
    return x


def _lower(x: str) -> str:
    return x.lower()


_STR = Family(_ident, _ident, operator.eq, templated=True)
_STR_CI = Family(_lower, _lower, operator.eq, templated=True)
_LIKE = Family(_ident, _ident, operator.eq, templated=True, pattern="string")
_ARN = Family(_ident, _ident, operator.eq, templated=True, pattern="arn")


def _num(cmp: Callable[[Any, Any], bool]) -> Family:
    return Family(parse_number, parse_number, lambda p, c: cmp(c, p))


def _date(cmp: Callable[[Any, Any], bool]) -> Family:
    return Family(parse_date, parse_date, lambda p, c: cmp(c, p))


def _bool_parse(text: str) -> str | None:
    low = text.lower()
    return low if low in ("true", "false") else None


_BOOL = Family(_bool_parse, _lower, operator.eq)
_BINARY = Family(lambda t: _b64(t) or t.encode(), lambda c: _b64(c) or c.encode(), operator.eq)
_IP = Family(_parse_ip, _ident, _ip_in)

# operator name -> (family, negated)
OPERATORS: dict[str, tuple[Family, bool]] = {
    "StringEquals": (_STR, False), "StringNotEquals": (_STR, True),
    "StringEqualsIgnoreCase": (_STR_CI, False), "StringNotEqualsIgnoreCase": (_STR_CI, True),
    "StringLike": (_LIKE, False), "StringNotLike": (_LIKE, True),
    "NumericEquals": (_num(operator.eq), False), "NumericNotEquals": (_num(operator.eq), True),
    "NumericLessThan": (_num(operator.lt), False),
    "NumericLessThanEquals": (_num(operator.le), False),
    "NumericGreaterThan": (_num(operator.gt), False),
    "NumericGreaterThanEquals": (_num(operator.ge), False),
    "DateEquals": (_date(operator.eq), False), "DateNotEquals": (_date(operator.eq), True),
    "DateLessThan": (_date(operator.lt), False), "DateLessThanEquals": (_date(operator.le), False),
    "DateGreaterThan": (_date(operator.gt), False),
    "DateGreaterThanEquals": (_date(operator.ge), False),
    "Bool": (_BOOL, False),
    "BinaryEquals": (_BINARY, False),
    "IpAddress": (_IP, False), "NotIpAddress": (_IP, True),
    "ArnEquals": (_ARN, False), "ArnLike": (_ARN, False),
    "ArnNotEquals": (_ARN, True), "ArnNotLike": (_ARN, True),
    "Null": (_BOOL, False),
}
SET_OPERATORS = ("ForAllValues:", "ForAnyValue:")


def split_operator(name: str) -> tuple[str | None, str, bool] | None:
    """``ForAnyValue:StringLikeIfExists`` -> (``ForAnyValue``, ``StringLike``, True)."""
    set_op: str | None = None
    for prefix in SET_OPERATORS:
        if name.startswith(prefix):
            set_op, name = prefix[:-1], name[len(prefix):]
            break
    if_exists = name.endswith("IfExists") and name != "Null"
    base = name[: -len("IfExists")] if if_exists else name
    if base not in OPERATORS or (if_exists and base == "Null"):
        return None
    return set_op, base, if_exists


class Condition:
    """One (operator, key, values) triple, compiled."""

    __slots__ = ("operator", "key", "name", "set_op", "if_exists", "negated", "null", "_static",
                 "_templates", "_family", "values")

    def __init__(self, op_name: str, key: str, values: Iterable[str], variables: bool) -> None:
        split = split_operator(op_name)
        if split is None:
            raise ValueError(f"unknown condition operator `{op_name}`")
        self.set_op, base, self.if_exists = split
        self.operator = op_name
        self.name = key
        self.key = key.lower()
        self.values = tuple(values)
        family, self.negated = OPERATORS[base]
        self._family = family
        self.null = base == "Null"
        templates = [parse_template(v, variables and family.templated) for v in self.values]
        self._templates = tuple(templates)
        self._static: Pred | None = None
        if all(t.static for t in templates):
            wild = family.pattern is not None
            self._static = self._predicate([t.render({}, wild) or "" for t in templates])

    @property
    def variable_keys(self) -> frozenset[str]:
        return frozenset().union(*(t.keys for t in self._templates))

    def _predicate(self, rendered: list[str]) -> Pred:
        fam = self._family
        if fam.pattern is not None:
            kind = fam.pattern
            matchers = [compile_pattern(r, kind) for r in rendered]  # type: ignore[arg-type]
            if kind == "arn":
                return lambda c: _is_arn(c) and any(m(c) for m in matchers)
            return lambda c: any(m(c) for m in matchers)
        parsed = [p for p in (fam.parse(r) for r in rendered) if p is not None]
        if fam.compare is operator.eq and fam.convert in (_ident, _lower):
            allowed = frozenset(parsed)
            conv = fam.convert
            return lambda c: conv(c) in allowed
        compare, convert = fam.compare, fam.convert

        def pred(c: str) -> bool:
            cv = convert(c)
            return cv is not None and any(compare(p, cv) for p in parsed)

        return pred

    def _pred_for(self, ctx: Context) -> Pred | None:
        if self._static is not None:
            return self._static
        wild = self._family.pattern is not None
        rendered = [t.render(ctx, wild) for t in self._templates]
        if any(r is None for r in rendered):
            return None
        return self._predicate([r for r in rendered if r is not None])

    def check(self, ctx: Context, missing: set[str]) -> bool | None:
        """True/False; ``None`` when a policy variable cannot be resolved (statement invalid)."""
        value = ctx.get(self.key)
        absent = value is None or value == ()
        if self.null:
            wanted = {v.lower() for v in self.values}
            return ("true" in wanted and absent) or ("false" in wanted and not absent)
        if self.set_op is not None and (absent or value == ""):
            return self.set_op == "ForAllValues"
        if absent:
            if self.if_exists:
                return True
            missing.add(self.name)
            return self.negated
        pred = self._pred_for(ctx)
        if pred is None:
            return None
        values = (value,) if isinstance(value, str) else value
        assert values is not None
        neg = self.negated
        if self.set_op == "ForAllValues":
            return all(pred(c) != neg for c in values)
        if self.set_op == "ForAnyValue":
            return any(pred(c) != neg for c in values)
        return any(pred(c) for c in values) != neg
