"""A generated request, as the fuzz suite sends it (raw query string, raw body)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

_PART = re.compile(rb'name="([^"]*)"\r\n\r\n(.*?)\r\n--', re.S)


@dataclass
class FuzzRequest:
    """One request: ``query`` and ``body`` are raw (percent-escapes kept as generated)."""

    rule: str
    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    signed_in: bool = False
    csrf: bool = False
    sigv4: str | None = None  # "header" | "presign": signed with real STS credentials

    def params(self) -> list[tuple[str, str]]:
        """Query and form-body pairs as a server decodes them (for the known-bug table)."""
        pairs = parse_qsl(self.query, keep_blank_values=True, errors="replace")
        ctype = (self.content_type or "").lower()
        if not ctype or "x-www-form-urlencoded" in ctype:
            text = self.body.decode("utf-8", "replace")
            pairs += parse_qsl(text, keep_blank_values=True, errors="replace")
        elif ctype.startswith("multipart/"):
            pairs += [(k.decode(errors="replace"), v.decode(errors="replace"))
                      for k, v in _PART.findall(self.body)]
        return pairs

    def param(self, name: str) -> list[str]:
        return [v for k, v in self.params() if k == name]

    def short(self) -> str:
        """A readable one-line description for failure messages."""
        body = self.body[:300]
        more = f"…(+{len(self.body) - 300} bytes)" if len(self.body) > 300 else ""
        return (f"{self.method} {self.path}?{self.query[:400]} ctype={self.content_type!r} "
                f"headers={self.headers!r} signed_in={self.signed_in} csrf={self.csrf} "
                f"sigv4={self.sigv4} body={body!r}{more}")
