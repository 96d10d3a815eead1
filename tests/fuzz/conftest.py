"""The fuzz suite's summary: generated requests per route and path, and bug-class hits."""

from __future__ import annotations

from typing import Any

from tests.fuzz import target as fuzz_target


def pytest_terminal_summary(terminalreporter: Any) -> None:
    t = fuzz_target._TARGET
    if t is None or not t.counts:
        return
    tr = terminalreporter
    tr.section("fuzz: generated requests per route (and the statuses they got)")
    total = 0
    for rule in sorted({r for r, _ in t.counts}):
        wsgi, flask = t.counts[(rule, "wsgi")], t.counts[(rule, "flask")]
        total += wsgi + flask
        both = f" (+{flask} straight to Flask)" if flask else ""
        codes = " ".join(f"{c}:{n}" for (r, c), n in sorted(t.statuses.items()) if r == rule)
        tr.write_line(f"{rule:38} {wsgi:6}{both}  statuses {codes}")
    tr.write_line(f"{'total generated requests':38} {total:6}")
    for entry, hits in sorted(t.known_hits.items()):
        tr.write_line(f"review bug class reached {entry}: {hits} requests")
