"""Plain results of the protocol core; the blueprint turns each into an HTTP response."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PostForm:
    """An auto-submitted HTTP-POST binding form (SAML Bindings §3.5.4)."""

    action: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Redirect:
    """An HTTP-Redirect binding message (SAML Bindings §3.4.4) or a local redirect."""

    location: str


@dataclass(frozen=True)
class NeedLogin:
    """Sign in (again) first, then come back to ``next_path`` to finish the request."""

    next_path: str
    reauth: bool = False


@dataclass(frozen=True)
class NeedMfa:
    """A second factor first (step-up), then back to ``next_path`` to finish the request."""

    next_path: str


@dataclass(frozen=True)
class Done:
    """A page for the person (e.g. signed out everywhere)."""

    title: str
    message: str
    details: list[str] = field(default_factory=list)


Outcome = PostForm | Redirect | NeedLogin | NeedMfa | Done
