"""Who must use a second factor (mfa.require), and the step-ups it causes for an OIDC client
and a SAML SP that require MFA."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.config import MfaRequireConfig
from idp.mfa.policy import MfaPolicy
from tests.mfa.web import login, mfa_app

ACCT = "111122223333"


@pytest.mark.parametrize(("require", "check", "expect"), [
    pytest.param({"groups": ["operators"]}, ("groups", ["operators", "x"]), True,
                 id="group-listed"),
    pytest.param({"groups": ["operators"]}, ("groups", ["Operators"]), False,
                 id="group-names-exact"),
    pytest.param({"roles": ["Operator"]}, ("role", f"arn:aws:iam::{ACCT}:role/ops/Operator"),
                 True, id="role-by-name-any-path"),
    pytest.param({"roles": [f"arn:aws:iam::{ACCT}:role/Operator"]},
                 ("role", f"arn:aws:iam::{ACCT}:role/Operator2"), False,
                 id="role-arn-exact"),
    pytest.param({"service_providers": ["https://sp"]}, ("sp", "https://sp/"), False,
                 id="sp-entity-id-exact"),
    pytest.param({"clients": ["payroll"]}, ("client", "payroll"), True, id="client-listed"),
    pytest.param({}, ("role", f"arn:aws:iam::{ACCT}:role/Admin"), False,
                 id="nothing-required-by-default"),
])
def test_mfa_policy(require: dict[str, list[str]], check: tuple[str, object],
                    expect: bool) -> None:
    policy = MfaPolicy(MfaRequireConfig(**require))
    what, value = check
    got = {"groups": policy.for_groups, "role": policy.for_role, "sp": policy.for_sp,
           "client": policy.for_client}[what](value)  # type: ignore[operator]
    assert got is expect


def test_trust_policy_testing_mfa_makes_the_role_require_it() -> None:
    from idp.app import mfa_roles
    from idp.iam import demo_model

    assert mfa_roles(demo_model("http://127.0.0.1:8000")) == [
        f"arn:aws:iam::{ACCT}:role/Operator"]


def test_oidc_client_requiring_mfa_steps_up(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = mfa_app(tmp_path, demo_keys_dir, sign_in="required",
                            require={"clients": ["demo-web"]})
    c = app.test_client()
    login(c, "dave", "dave-password")
    r = c.get("/oauth2/authorize?client_id=demo-web&response_type=code&scope=openid"
              "&redirect_uri=http://127.0.0.1:8400/callback&state=s")
    assert r.status_code == 302 and r.headers["Location"].startswith(
        "/login/mfa?next=%2Foauth2%2Fauthorize%3Fresume%3D")
    login(c, "alice", "alice-password", reauth="1")  # no factor: refused at the second step
    r = c.get("/oauth2/authorize?client_id=demo-web&response_type=code&scope=openid"
              "&redirect_uri=http://127.0.0.1:8400/callback&state=s")
    assert c.get(r.headers["Location"]).status_code == 403
    comps.close()


def test_saml_sp_requiring_mfa_steps_up(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = mfa_app(tmp_path, demo_keys_dir, sign_in="required",
                            require={"service_providers": ["urn:amazon:webservices"]})
    c = app.test_client()
    login(c, "dave", "dave-password")
    r = c.get("/saml/idp-initiated?sp=urn:amazon:webservices")
    assert r.status_code == 302 and r.headers["Location"].startswith(
        "/login/mfa?next=%2Fsaml%2Fsso%3Fresume%3D")
    comps.close()
