"""Parsed, validated and compiled policy documents.

A :class:`Policy` is compiled once: action patterns become an index by service prefix plus
matchers, resource patterns become segment-aware matchers (or templates when they hold policy
variables), conditions are resolved to operator functions (:mod:`idp.iam.conditions`).  See
IAM User Guide, "IAM JSON policy element reference" for each element.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from idp.iam.arn import Matcher, compile_pattern, mark
from idp.iam.conditions import Condition
from idp.iam.errors import MalformedPolicyDocument
from idp.iam.principals import PrincipalSpec
from idp.iam.validation import SYNTAX, PolicyKind, statements_of, validate
from idp.iam.variables import Context, Template, parse_template

Position = tuple[int, int]  # (line, column), both 1-based


@dataclass(frozen=True, slots=True)
class ResourcePattern:
    """One ``Resource`` entry: a static matcher, or a template rendered per request."""

    text: str
    matcher: Matcher | None
    template: Template | None

    def match(self, resource: str, ctx: Context) -> bool | None:
        if self.matcher is not None:
            return bool(self.matcher(resource))
        assert self.template is not None
        rendered = self.template.render(ctx, True)
        if rendered is None:
            return None
        return bool(compile_pattern(rendered, "arn")(resource))


@dataclass(frozen=True, eq=False)
class Statement:
    """One compiled statement; ``index`` is its 0-based position in the policy."""

    index: int
    sid: str | None
    allow: bool
    actions: tuple[Matcher, ...]
    not_action: bool
    services: frozenset[str] | None  # action service prefixes; None: any service may match
    resources: tuple[ResourcePattern, ...] | None  # None: no Resource element (trust policies)
    not_resource: bool
    principal: PrincipalSpec | None
    not_principal: bool
    conditions: tuple[Condition, ...]
    start: Position | None = None
    end: Position | None = None

    @property
    def effect(self) -> str:
        return "Allow" if self.allow else "Deny"

    def action_matches(self, action: str) -> bool:
        hit = any(m(action) for m in self.actions)
        return hit != self.not_action


@dataclass(frozen=True, eq=False)
class Policy:
    """A compiled policy document of one kind, with an id for explanations."""

    id: str
    kind: PolicyKind
    version: str
    statements: tuple[Statement, ...]
    document: Mapping[str, Any]
    text: str
    context_keys: frozenset[str]
    _by_action: dict[str, tuple[Statement, ...]] = field(default_factory=dict, repr=False)

    def matching(self, action: str) -> tuple[Statement, ...]:
        """Statements whose ``Action``/``NotAction`` covers ``action`` (lower case), memoized:
        actions are few, so after warm-up no action pattern is matched again."""
        hit = self._by_action.get(action)
        if hit is None:
            service = action.split(":", 1)[0]
            hit = tuple(s for s in self.statements
                        if (s.services is None or service in s.services)
                        and s.action_matches(action))
            if len(self._by_action) >= 8192:
                self._by_action.clear()
            self._by_action[action] = hit
        return hit


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _action_service(pattern: str) -> str | None:
    svc = pattern.split(":", 1)[0].lower()
    return None if ("*" in svc or "?" in svc or ":" not in pattern) else svc


def _compile_statement(index: int, st: Mapping[str, Any], variables: bool) -> Statement:
    not_action = "NotAction" in st
    actions = _list(st["NotAction"] if not_action else st["Action"])
    services: frozenset[str] | None = None
    if not not_action:
        svcs = [_action_service(a) for a in actions]
        services = None if any(s is None for s in svcs) else frozenset(s for s in svcs if s)
    resources: tuple[ResourcePattern, ...] | None = None
    not_resource = "NotResource" in st
    if "Resource" in st or not_resource:
        pats = []
        for r in _list(st["NotResource"] if not_resource else st["Resource"]):
            tpl = parse_template(r, variables)
            if tpl.static:
                pats.append(ResourcePattern(r, compile_pattern(mark(r), "arn"), None))
            else:
                pats.append(ResourcePattern(r, None, tpl))
        resources = tuple(pats)
    not_principal = "NotPrincipal" in st
    principal = None
    if "Principal" in st or not_principal:
        principal = PrincipalSpec.from_element(st["NotPrincipal" if not_principal else "Principal"])
    conditions = []
    for op, body in (st.get("Condition") or {}).items():
        for key, values in body.items():
            items = values if isinstance(values, list) else [values]
            conditions.append(Condition(op, key, [_text(v) for v in items], variables))
    return Statement(
        index=index, sid=st.get("Sid") or None, allow=st["Effect"] == "Allow",
        actions=tuple(compile_pattern(mark(a), "action") for a in actions),
        not_action=not_action, services=services, resources=resources,
        not_resource=not_resource, principal=principal, not_principal=not_principal,
        conditions=tuple(conditions),
    )


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def parse_policy(source: str | Mapping[str, Any], kind: PolicyKind = "identity",
                 policy_id: str = "policy") -> Policy:
    """Parse, validate and compile a policy; raise :class:`MalformedPolicyDocument`."""
    if isinstance(source, str):
        text = source
        try:
            doc = json.loads(source)
        except (ValueError, RecursionError) as exc:
            raise MalformedPolicyDocument(SYNTAX, f"line {getattr(exc, 'lineno', 1)}") from None
    else:
        doc = source
        try:
            text = json.dumps(source, indent=2)
        except (TypeError, ValueError):
            raise MalformedPolicyDocument(SYNTAX) from None
    validate(doc, kind)
    version = doc.get("Version", "2008-10-17")
    variables = version == "2012-10-17"
    stmts = [_compile_statement(i, st, variables) for i, (_, st) in enumerate(statements_of(doc))]
    spans = statement_spans(text)
    if len(spans) == len(stmts):
        stmts = [_with_span(s, text, span) for s, span in zip(stmts, spans, strict=True)]
    keys: set[str] = set()
    for s in stmts:
        for c in s.conditions:
            keys.add(c.key)
            keys |= c.variable_keys
        for r in s.resources or ():
            if r.template is not None:
                keys |= r.template.keys
    return Policy(policy_id, kind, version, tuple(stmts), doc, text, frozenset(keys))


def _with_span(s: Statement, text: str, span: tuple[int, int]) -> Statement:
    from dataclasses import replace

    return replace(s, start=line_column(text, span[0]), end=line_column(text, span[1]))


def line_column(text: str, offset: int) -> Position:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def statement_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of each statement in the JSON text (for ``StartPosition``)."""
    dec = json.JSONDecoder()
    ws = " \t\n\r"
    try:
        i = _skip(text, 0, ws)
        if text[i] != "{":
            return []
        i += 1
        while True:
            i = _skip(text, i, ws + ",")
            if text[i] == "}":
                return []
            key, i = dec.raw_decode(text, i)
            i = _skip(text, i, ws)
            i = _skip(text, i + 1, ws)  # past ':'
            if key != "Statement":
                _, i = dec.raw_decode(text, i)
                continue
            if text[i] == "{":
                _, end = dec.raw_decode(text, i)
                return [(i, end)]
            spans: list[tuple[int, int]] = []
            i += 1
            while True:
                i = _skip(text, i, ws + ",")
                if text[i] == "]":
                    return spans
                _, end = dec.raw_decode(text, i)
                spans.append((i, end))
                i = end
    except (ValueError, IndexError):
        return []


def _skip(text: str, i: int, chars: str) -> int:
    while text[i] in chars:
        i += 1
    return i
