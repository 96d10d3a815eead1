"""Recovery codes: 10 single-use codes of 50 random bits each, kept as argon2id hashes.

Shown once when made; a code is spent by removing its hash.  Codes are ten characters of
Crockford's base32 alphabet shown as ``xxxxx-xxxxx``; dashes, spaces and case are ignored
when one is typed, and the letters Crockford reads as digits (I, L → 1; O → 0) are read so.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

COUNT = 10
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_CROCKFORD = str.maketrans("ilo", "110")


def generate(count: int = COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize(code: str) -> str | None:
    """The canonical ten characters, or ``None`` when it cannot be a recovery code."""
    s = code.strip().lower().replace("-", "").replace(" ", "")
    s = s.translate(_CROCKFORD)
    if len(s) != 10 or any(c not in ALPHABET for c in s):
        return None
    return s


def hash_code(code: str) -> str:
    norm = normalize(code)
    if norm is None:
        raise ValueError("not a recovery code")
    return HASHER.hash(norm)


def find(hashes: list[str], code: str) -> int | None:
    """The index of the hash ``code`` matches, or ``None`` (argon2's own check compares in
    constant time; which position matched tells nothing about the code)."""
    norm = normalize(code)
    if norm is None:
        return None
    for i, h in enumerate(hashes):
        try:
            if HASHER.verify(h, norm):
                return i
        except (VerificationError, InvalidHashError):
            continue
    return None
