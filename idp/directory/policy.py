"""Password rules (NIST SP 800-63B §5.1.1.2, "Memorized Secret Verifiers").

One :class:`PasswordPolicy`, built from the config's ``passwords`` section, is applied
wherever this IdP sets a password (``idp users add|passwd``, the account page, before an LDAP
password change is sent).  :meth:`PasswordPolicy.check` returns *every* unmet rule at once,
so a form can list them all; :meth:`PasswordPolicy.strength` is the 0–4 score of a strength
meter.

The rules and their defaults:

- length: at least ``min_length`` (8, the SHALL of §5.1.1.2) and up to ``max_length`` (at least
  64 allowed, the SHOULD) Unicode code points, counted after the RFC 8265 OpaqueString
  preparation (:func:`idp.directory.file.opaque`); every printable character and space allowed;
- blocklist: "passwords obtained from previous breach corpuses" and "dictionary words" are
  refused.  The shipped list is zxcvbn's ``passwords`` frequency list (the 30,000 most common
  passwords of Burnett's 10 million password corpus), compared case-insensitively, plus any
  ``blocklist_files``; zxcvbn's estimator (Wheeler, USENIX Security 2016) also refuses what it
  guesses in under 1,000 tries (score 0): a listed password with l33t substitutions or
  reversed, keyboard walks, repeats and sequences ("repetitive or sequential characters");
- context: "context-specific words, such as the name of the service, the username, and
  derivatives thereof" — the username, e-mail address parts, name words, the issuer's host
  name labels and ``context_words``, each of 3 characters or more, refused as a substring;
- composition (upper, lower, digit, symbol): off by default — §5.1.1.2 says verifiers
  "SHOULD NOT impose other composition rules"; available for sites whose regulator asks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from idp.config import PasswordPolicyConfig
from idp.errors import ConfigError

ZXCVBN_MAX = 72
"""zxcvbn refuses longer input; the estimate of a longer password is that of its start."""

MIN_CONTEXT_WORD = 3


@dataclass(frozen=True)
class Unmet:
    """One rule a password does not meet: a stable ``rule`` id and a sentence for people."""

    rule: str
    message: str


@cache
def _shipped_blocklist() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"])


def _read_list(path: Path) -> frozenset[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the password blocklist ({exc.strerror})"]) \
            from exc
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


def context_words(username: str = "", email: str | None = None, name: str | None = None,
                  issuer: str | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The words a password must not contain: the username and its parts, the e-mail
    address's local part and domain labels, the name's words, the issuer's host labels."""
    words: list[str] = []
    if username:
        words.append(username)
        words += re.split(r"[\W_]+", username)
    if email:
        local, _, domain = email.partition("@")
        words.append(local)
        words += re.split(r"[\W_]+", local) + domain.split(".")
    if name:
        words += re.split(r"[\W_]+", name)
    if issuer:
        host = re.sub(r"^https?://", "", issuer).split("/")[0].split(":")[0]
        words += [label for label in host.split(".") if not label.isdigit()]
    words += list(extra)
    folded = {w.casefold() for w in words if len(w) >= MIN_CONTEXT_WORD}
    return sorted(folded - {"www", "com", "org", "net", "localhost"})


def _prepare(password: str) -> str:
    from idp.directory.file import opaque

    return opaque(password)


class PasswordPolicy:
    """The configured rules (NIST SP 800-63B §5.1.1.2)."""

    def __init__(self, config: PasswordPolicyConfig | None = None,
                 issuer: str | None = None) -> None:
        self.config = config or PasswordPolicyConfig()
        self.issuer = issuer
        extra: frozenset[str] = frozenset()
        for path in self.config.blocklist_files:
            extra |= _read_list(path)
        self._extra = extra

    def check(self, password: str, context: Sequence[str] = ()) -> list[Unmet]:
        """Every rule ``password`` does not meet, in a fixed order; empty when it is fine.
        ``context`` are the person's own words (see :func:`context_words`); the issuer's host
        labels and the configured ``context_words`` are added here."""
        c = self.config
        pw = _prepare(password)
        unmet: list[Unmet] = []
        if len(pw) < c.min_length:
            unmet.append(Unmet("min_length", f"use at least {c.min_length} characters"))
        if len(pw) > c.max_length:
            unmet.append(Unmet("max_length", f"use at most {c.max_length} characters"))
        if any(unicodedata.category(ch) == "Cc" for ch in pw):
            unmet.append(Unmet("control", "control characters cannot be typed reliably"))
        folded = pw.casefold()
        if c.blocklist and (folded in _shipped_blocklist() or folded in self._extra):
            unmet.append(Unmet("blocklist", "this password is on a list of common or "
                                            "breached passwords"))
        elif c.blocklist and pw and self.strength(pw) == 0:
            unmet.append(Unmet("guessable", "this password is too easy to guess (a common "
                                            "password, a keyboard pattern, a repeat or a "
                                            "sequence)"))
        words = context_words(issuer=self.issuer, extra=[*context, *c.context_words])
        found = [w for w in words if w in folded]
        if found:
            unmet.append(Unmet("context", "do not use your name, username, e-mail address or "
                                          "the name of this service"))
        for flag, rule, test, what in (
                (c.require_upper, "upper", str.isupper, "an upper-case letter"),
                (c.require_lower, "lower", str.islower, "a lower-case letter"),
                (c.require_digit, "digit", str.isdigit, "a digit"),
                (c.require_symbol, "symbol", _is_symbol, "a symbol")):
            if flag and not any(test(ch) for ch in pw):
                unmet.append(Unmet(rule, f"include {what}"))
        return unmet

    def strength(self, password: str) -> int:
        """zxcvbn's score, 0 (guessed in under 10^3 tries) to 4 (over 10^10)."""
        if not password:
            return 0
        from zxcvbn import zxcvbn

        score: int = zxcvbn(password[:ZXCVBN_MAX])["score"]
        return score

    def enforce(self, password: str, context: Sequence[str] = ()) -> None:
        """Raise :class:`ConfigError` listing every unmet rule (for the CLI)."""
        unmet = self.check(password, context)
        if unmet:
            raise ConfigError([f"password refused: {u.message}" for u in unmet])


def _is_symbol(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace()
