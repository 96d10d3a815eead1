"""``idp audit report``: what a security team reads each morning, from the audit index.

Failed sign-ins by account and by source IP, lockouts, password spraying (one IP, many
accounts, few tries each: MITRE ATT&CK T1110.003), credential stuffing (one account, many
IPs: T1110.004), STS refusals by principal and error code, role assumptions by person, the
first time a person took a role (within the index's retention), and administrative actions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from idp.audit.alerts import (
    ASSUME_ACTIONS,
    STS_ACTIONS,
    failed_sign_in,
    lockout,
    role_of,
    sts_principal,
    user_of,
)


@dataclass(frozen=True)
class Thresholds:
    """When the report calls a pattern an attack (the alert rules' thresholds when set)."""

    spray_accounts: int = 10  # distinct accounts failed from one IP
    spray_max_tries: float = 3.0  # average failures per account (few tries each)
    stuffing_ips: int = 5  # distinct IPs failing on one account


@dataclass
class Report:
    failed_by_account: Counter[str] = field(default_factory=Counter)
    failed_by_ip: Counter[str] = field(default_factory=Counter)
    lockouts: Counter[str] = field(default_factory=Counter)
    spraying: list[dict[str, Any]] = field(default_factory=list)
    stuffing: list[dict[str, Any]] = field(default_factory=list)
    sts_refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    assumptions: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_use: list[dict[str, str]] = field(default_factory=list)
    admin: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "failedSignInsByAccount": dict(self.failed_by_account.most_common()),
            "failedSignInsByIp": dict(self.failed_by_ip.most_common()),
            "lockouts": dict(self.lockouts.most_common()),
            "passwordSpraying": self.spraying,
            "credentialStuffing": self.stuffing,
            "stsRefusals": [{"principal": p, "errorCode": c, "count": n}
                            for (p, c), n in self.sts_refusals.most_common()],
            "roleAssumptions": [{"user": u, "role": r, "count": n}
                                for (u, r), n in self.assumptions.most_common()],
            "firstUseOfRole": self.first_use,
            "adminActions": self.admin,
        }


def person(r: Mapping[str, Any]) -> str:
    """Who took a role: the signed-in user, the source identity, or the session's signer."""
    extra = r.get("additionalEventData") or {}
    if isinstance(extra, Mapping) and extra.get("sourceIdentity"):
        return str(extra["sourceIdentity"])
    return user_of(r) or "anonymous"


def build_report(events: Iterable[Mapping[str, Any]], earlier: Iterable[Mapping[str, Any]],
                 thresholds: Thresholds = Thresholds()) -> Report:
    """The report over ``events``; ``earlier`` are the role assumptions before the window
    (a person's first use of a role is one not among them)."""
    rep = Report()
    per_ip: dict[str, Counter[str]] = defaultdict(Counter)
    per_account: dict[str, set[str]] = defaultdict(set)
    seen = {(person(r), role_of(r)) for r in earlier
            if r.get("eventName") in ASSUME_ACTIONS and not r.get("errorCode")}
    for r in events:
        name = r.get("eventName")
        ip = str(r.get("sourceIPAddress") or "")
        if failed_sign_in(r):
            user = user_of(r)
            rep.failed_by_account[user] += 1
            rep.failed_by_ip[ip] += 1
            per_ip[ip][user] += 1
            per_account[user].add(ip)
        elif lockout(r):
            rep.lockouts[user_of(r) or ip] += 1
        if name in STS_ACTIONS and r.get("errorCode"):
            rep.sts_refusals[(sts_principal(r), str(r["errorCode"]))] += 1
        if name in ASSUME_ACTIONS and not r.get("errorCode"):
            pair = (person(r), role_of(r))
            rep.assumptions[pair] += 1
            if pair not in seen:
                seen.add(pair)
                rep.first_use.append({"user": pair[0], "role": pair[1],
                                      "eventTime": str(r.get("eventTime")),
                                      "sourceIPAddress": ip})
        if (r.get("userIdentity") or {}).get("type") == "Admin":
            rep.admin.append({"eventTime": r.get("eventTime"), "eventName": name,
                              "operator": user_of(r),
                              "resources": [x.get("ARN") for x in r.get("resources") or []]})
    for ip, users in sorted(per_ip.items()):
        tries = sum(users.values())
        if len(users) >= thresholds.spray_accounts and \
                tries / len(users) <= thresholds.spray_max_tries:
            rep.spraying.append({"sourceIPAddress": ip, "accounts": len(users),
                                 "failures": tries})
    for user, ips in sorted(per_account.items()):
        if len(ips) >= thresholds.stuffing_ips:
            rep.stuffing.append({"account": user, "sourceIPs": len(ips),
                                 "failures": rep.failed_by_account[user]})
    return rep


def render(rep: Report, top: int = 10) -> str:
    """The report as text for a terminal."""
    out: list[str] = []

    def section(title: str, rows: list[str]) -> None:
        out.append(f"== {title} ({len(rows)})")
        out.extend("  " + row for row in rows[:top]) if rows else out.append("  none")

    section("Failed sign-ins by account",
            [f"{n:6}  {u}" for u, n in rep.failed_by_account.most_common()])
    section("Failed sign-ins by IP", [f"{n:6}  {ip}" for ip, n in rep.failed_by_ip.most_common()])
    section("Lockouts", [f"{n:6}  {u}" for u, n in rep.lockouts.most_common()])
    section("Password spraying (one IP, many accounts, few tries each)",
            [f"{s['sourceIPAddress']}: {s['accounts']} accounts, {s['failures']} failures"
             for s in rep.spraying])
    section("Credential stuffing (one account, many IPs)",
            [f"{s['account']}: {s['sourceIPs']} IPs, {s['failures']} failures"
             for s in rep.stuffing])
    section("STS refusals by principal and code",
            [f"{n:6}  {p}  {c}" for (p, c), n in rep.sts_refusals.most_common()])
    section("Role assumptions by person",
            [f"{n:6}  {u} -> {r}" for (u, r), n in rep.assumptions.most_common()])
    section("First use of a role by a person",
            [f"{f['eventTime']}  {f['user']} -> {f['role']}  from {f['sourceIPAddress']}"
             for f in rep.first_use])
    section("Administrative actions",
            [f"{a['eventTime']}  {a['eventName']}  by {a['operator']}  "
             f"{' '.join(str(x) for x in a['resources'])}".rstrip() for a in rep.admin])
    return "\n".join(out)
