"""Shared fixtures: real servers started on free ports (see tests/fixtures/)."""

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.live",
    "tests.fixtures.redis_server",
    "tests.fixtures.slapd",
    "tests.fixtures.slapd_ppolicy",
]
