"""Property-based fuzzing of every route: never a 5xx, never a traceback, always the
protocol's own error shape.

Every rule of ``app.url_map`` is a test case (a new route is fuzzed the day it is added, and
fails until ``shapes.ROUTE_SHAPES`` says which error shape it answers in).  Each generated
request uses one of the methods the route allows or one it does not, protocol parameters with
plausible values of which a few are mutated (boundary values, Unicode digits, NUL and control
characters, invalid UTF-8 escapes, overflowing numbers, impossible dates, duplicated and
percent-encoded names), every content type, huge and deeply nested bodies, with or without a
signed-in session cookie and CSRF token, on ``/sts`` and ``/iam`` SigV4 signatures made with
real credentials, and on ``/saml/sso`` and ``/saml/slo`` HTTP-Redirect queries signed by a test
service provider (``AuthnRequestsSigned``), some with a forged copy of a parameter under a
percent-encoded name.  See ``gen.py`` and ``values.py`` for the generators, ``shapes.py``
for the checks, ``target.py`` for the app and the two paths requests take.

Profiles (environment variable ``IDP_FUZZ_PROFILE``):

- ``ci`` (default): a fixed seed (``derandomize``) and a bounded number of examples per route,
  so ``./dev test`` runs the suite in well under a minute and a failure reproduces;
- ``long``: 20 times as many examples, a fresh random seed each run, for local hunting::

      IDP_FUZZ_PROFILE=long .venv/bin/python -m pytest -q tests/fuzz

The number of generated requests per route (and their statuses) is printed at the end of the
run, with how many of them fall in each bug class of ``known.BUG_CLASSES`` (the classes an
outside review found; nothing is excused, the counts show the profile still reaches them).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.gen import fuzz_request
from tests.fuzz.known import known_bug
from tests.fuzz.shapes import ROUTE_SHAPES, problems
from tests.fuzz.target import Target, target

CI_EXAMPLES = 80
settings.register_profile(
    "idp-fuzz-ci", max_examples=CI_EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=list(HealthCheck), print_blob=True)
settings.register_profile(
    "idp-fuzz-long", max_examples=CI_EXAMPLES * 20, deadline=None, database=None,
    suppress_health_check=list(HealthCheck), print_blob=True)
PROFILE = settings.get_profile("idp-fuzz-" + os.environ.get("IDP_FUZZ_PROFILE", "ci"))
DISALLOWED = ("GET", "POST", "PUT", "DELETE", "PATCH")
# routes that take every method and refuse the wrong ones in their own code (the AWS SSO
# REST-JSON APIs answer their own 405): fuzz them mostly with the method their API uses
API_METHOD = {"/sso-oidc/client/register": ["POST"], "/sso-oidc/device_authorization": ["POST"],
              "/sso-oidc/token": ["POST"], "/sso-portal/assignment/accounts": ["GET"],
              "/sso-portal/assignment/roles": ["GET"],
              "/sso-portal/federation/credentials": ["GET"], "/sso-portal/logout": ["POST"]}


def methods(allowed: list[str]) -> st.SearchStrategy[str]:
    """Mostly the route's own methods; sometimes one it does not allow, HEAD or OPTIONS."""
    others = [m for m in DISALLOWED if m not in allowed]
    # (hypothesis favours the ends of a range: the rare picks sit in the middle)
    return st.integers(0, 9).flatmap(lambda i: st.sampled_from(
        others if i == 4 else ["HEAD", "OPTIONS"] if i == 5 else allowed))


@pytest.fixture(scope="module")
def app_target() -> Target:
    return target()


def test_every_route_has_a_protocol_shape(app_target: Target) -> None:
    """A route of the app without an entry in the shape table (or a stale entry) fails."""
    rules = set(app_target.rules())
    assert sorted(rules - set(ROUTE_SHAPES)) == [], "routes with no protocol shape rule"
    assert sorted(set(ROUTE_SHAPES) - rules) == [], "shape rules for routes that do not exist"


@pytest.mark.parametrize("rule", sorted(target().rules()))
@settings(PROFILE)
@given(data=st.data())
def test_no_5xx_no_traceback_protocol_error_shape(app_target: Target, rule: str,
                                                  data: st.DataObject) -> None:
    assert rule in ROUTE_SHAPES, f"no protocol shape rule for `{rule}` in shapes.ROUTE_SHAPES"
    allowed = API_METHOD.get(rule, app_target.rules()[rule])
    req = data.draw(fuzz_request(rule, methods(allowed), app_target.ctx),
                    label="request")
    app_target.sign(req)
    found: list[str] = []
    statuses = {}
    for via in app_target.paths(rule):
        try:
            resp = app_target.send(req, via, generated=True)
        except Exception as exc:  # noqa: BLE001 - an escaped exception is a 500 in production
            found.append(f"[{via}] exception escaped the WSGI app: {exc!r}")
            continue
        statuses[via] = resp.status_code
        found += [f"[{via}] {p}" for p in problems(ROUTE_SHAPES[rule], req.method, resp)]
    if len(set(statuses.values())) > 1:
        found.append(f"the fast path and Flask answer differently: {statuses}")
    entry = known_bug(req)
    if entry is not None:
        app_target.known_hits[entry.id] += 1
    if found:
        raise AssertionError("; ".join(found) + "\nrequest: " + req.short())
