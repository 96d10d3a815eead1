"""The HTTP-POST binding's form (SAML Bindings §3.5.4) is built from ``saml_post.html``
rendered once: it must be exactly what rendering the template for each response gives,
escaping included (a RelayState is the SP's text, echoed back), for any number of fields and
under a script root; Flask's cookie session is off (the IdP session is in the store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import render_template, session

from idp.web.saml import post_page
from tests.helpers import config, make_app

NASTY = "\"><script>alert('x')</script>&amp;\x01 é ' <"


@pytest.mark.parametrize("fields", [
    pytest.param({"SAMLResponse": "PHNhbWxwOlJlc3BvbnNlLz4="}, id="one field"),
    pytest.param({"SAMLResponse": "abc", "RelayState": NASTY}, id="relay state to escape"),
    pytest.param({NASTY: NASTY, "RelayState": "", "csrf_token": "t"}, id="three, names too"),
])
@pytest.mark.parametrize("script_root", ["", "/idp"])
def test_post_page_is_the_template_rendered_for_this_response(
        tmp_path: Path, demo_keys_dir: Path, fields: dict[str, str], script_root: str) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    try:
        action = f"https://sp.example/acs?a=1&b={NASTY}"
        with app.test_request_context("/saml/sso", base_url=f"http://localhost{script_root}/"):
            want = render_template("saml_post.html", action=action, fields=fields)
            assert post_page(action, fields) == want
            assert post_page(action, fields) == want, "from the parts kept"
            assert f"{script_root}/static/saml_post.js" in want
            assert "<script>alert" not in want
    finally:
        comps.close()


def test_a_form_without_fields_is_refused(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    try:
        with app.test_request_context("/saml/sso"), pytest.raises(ValueError):
            post_page("https://sp.example/acs", {})
    finally:
        comps.close()


def test_flask_cookie_session_is_off(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    try:
        with app.test_request_context("/"), pytest.raises(RuntimeError):
            session["who"] = "mallory"
        r = app.test_client().get("/healthz", headers={"Cookie": "session=forged"})
        assert r.status_code == 200 and "session=" not in r.headers.get("Set-Cookie", "")
    finally:
        comps.close()


def test_post_page_parts_are_kept_per_script_root(tmp_path: Path, demo_keys_dir: Path) -> None:
    app, comps, _ = make_app(config(tmp_path, demo_keys_dir))
    try:
        for root in ("", "/a", "", "/b"):
            with app.test_request_context("/saml/sso", base_url=f"http://localhost{root}/"):
                page = post_page("https://sp.example/acs", {"SAMLResponse": "x"})
                assert f'src="{root}/static/saml_post.js"' in page
    finally:
        comps.close()
