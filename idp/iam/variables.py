"""Policy variables (IAM User Guide, "IAM policy elements: Variables and tags").

* ``${key}`` is replaced by the value of the request-context key (keys are case-insensitive).
* ``${key, 'default'}`` ("Specifying default values"): the default is used when the key is
  absent; inside the default, ``''`` stands for one quote.  Spaces around the key and the
  default are ignored.
* ``${*}``, ``${?}``, ``${$}`` ("Special characters") stand for a literal ``*``, ``?``, ``$``.
* Variables apply only to ``Version`` ``2012-10-17`` documents; in ``2008-10-17`` documents
  (or without ``Version``) the text is taken literally.
* A multivalued context key cannot be used as a variable ("Single-valued vs. multivalued
  context keys"), and "if AWS cannot resolve a variable this might cause the entire statement
  to be invalid": :meth:`Template.render` returns ``None`` and the statement does not apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from idp.iam.arn import mark

ContextValue = str | tuple[str, ...]
Context = Mapping[str, ContextValue]

_SPECIAL = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True, slots=True)
class Var:
    key: str  # lower case
    default: str | None


Part = str | Var  # a str part is policy text (wildcards in it are real wildcards)


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal character from ``${*}``/``${?}``/``${$}``: never a wildcard."""

    char: str


@dataclass(frozen=True, slots=True)
class Template:
    """A policy string split into text, variables and escaped characters."""

    parts: tuple[str | Var | Literal, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(p.key for p in self.parts if isinstance(p, Var))

    @property
    def static(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, ctx: Context, wildcards: bool) -> str | None:
        """The string with variables substituted; wildcards of the policy text marked when
        ``wildcards``.  ``None`` when a variable has no value and no default."""
        out: list[str] = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(mark(p) if wildcards else p)
            elif isinstance(p, Literal):
                out.append(p.char)
            else:
                value = ctx.get(p.key)
                if isinstance(value, str):
                    out.append(value)
                elif p.default is not None:
                    out.append(p.default)
                else:
                    return None
        return "".join(out)


def _parse_inner(inner: str) -> Var | Literal | None:
    stripped = inner.strip()
    if stripped in _SPECIAL and inner == stripped:
        return Literal(_SPECIAL[stripped])
    key, comma, rest = inner.partition(",")
    key = key.strip()
    if not key or any(c in key for c in " '${}"):
        return None
    if not comma:
        return Var(key.lower(), None)
    rest = rest.strip()
    if len(rest) < 2 or rest[0] != "'" or rest[-1] != "'":
        return None
    body = rest[1:-1]
    if "'" in body.replace("''", ""):
        return None
    return Var(key.lower(), body.replace("''", "'"))


def parse_template(text: str, variables: bool = True) -> Template:
    """Split ``text`` into parts; malformed ``${...}`` sequences are kept as literal text."""
    if not variables or "${" not in text:
        return Template((text,))
    parts: list[str | Var | Literal] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            buf.append(text[i:])
            break
        buf.append(text[i:start])
        end = _closing_brace(text, start + 2)
        parsed = _parse_inner(text[start + 2:end]) if end >= 0 else None
        if parsed is None:
            buf.append(text[start:start + 2])
            i = start + 2
            continue
        if buf:
            parts.append("".join(buf))
            buf = []
        parts.append(parsed)
        i = end + 1
    if buf and "".join(buf):
        parts.append("".join(buf))
    return Template(tuple(p for p in parts if p != ""))


def _closing_brace(text: str, i: int) -> int:
    quoted = False
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif ch == "}" and not quoted:
            return i
        i += 1
    return -1
