"""What a person has enrolled: factors (each with a name) and recovery codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("totp", "recovery")

AMR = {"totp": "otp", "recovery": "otp", "email": "otp", "sms": "sms", "webauthn": "hwk"}
"""RFC 8176 §2 authentication method reference of each factor kind."""


@dataclass
class Factor:
    """One enrolled factor.  ``secret`` is sealed (see :mod:`idp.mfa.crypto`)."""

    id: str
    kind: str
    name: str
    created: int
    secret: str = ""
    last_used: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """What may be shown to the person and to admins: never the secret."""
        return {"id": self.id, "kind": self.kind, "name": self.name, "created": self.created,
                "last_used": self.last_used}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "created": self.created,
                "secret": self.secret, "last_used": self.last_used, "data": self.data}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Factor:
        return cls(id=str(raw["id"]), kind=str(raw["kind"]), name=str(raw["name"]),
                   created=int(raw["created"]), secret=str(raw.get("secret", "")),
                   last_used=raw.get("last_used"), data=dict(raw.get("data") or {}))


@dataclass
class Enrolment:
    """A person's factors and the argon2id hashes of their unused recovery codes."""

    username: str
    factors: list[Factor] = field(default_factory=list)
    recovery: list[str] = field(default_factory=list)
    recovery_created: int | None = None

    def find(self, factor_id: str) -> Factor | None:
        return next((f for f in self.factors if f.id == factor_id), None)

    def of_kind(self, kind: str) -> list[Factor]:
        return [f for f in self.factors if f.kind == kind]

    @property
    def has_factor(self) -> bool:
        """A factor that can be used to sign in (recovery codes alone are not one)."""
        return bool(self.factors)

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "factors": [f.to_json() for f in self.factors],
                "recovery": list(self.recovery), "recovery_created": self.recovery_created}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Enrolment:
        return cls(username=str(raw["username"]),
                   factors=[Factor.from_json(f) for f in raw.get("factors") or []],
                   recovery=[str(h) for h in raw.get("recovery") or []],
                   recovery_created=raw.get("recovery_created"))
