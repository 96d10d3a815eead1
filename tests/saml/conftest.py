"""A live demo IdP that trusts real SP apps (python3-saml, pysaml2) on their own ports."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.config import SamlConfig, SamlSpOptions
from idp.demo import demo_config
from tests.fixtures.live import LiveIdp, live_idp, serve_app
from tests.fixtures.servers import free_port
from tests.saml.spapps import OneLoginSp, Pysaml2Sp

_FORM = re.compile(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"", re.I)


def form_of(page: str) -> tuple[str, dict[str, str]] | None:
    m = _FORM.search(page)
    if not m:
        return None
    fields = {html.unescape(n): html.unescape(v) for n, v in _INPUT.findall(m.group(2))}
    return html.unescape(m.group(1)), fields


class Browser:
    """requests with cookies, following redirects and auto-submitting SAML POST forms."""

    def __init__(self, idp_url: str, username: str = "alice",
                 password: str = "alice-password") -> None:
        self.s = requests.Session()
        self.idp = idp_url
        self.username, self.password = username, password
        self.seen: list[requests.Response] = []

    def go(self, url: str, *, submit_saml: bool = True) -> requests.Response:
        resp = self.s.get(url, timeout=10)
        return self.follow(resp, submit_saml=submit_saml)

    def follow(self, resp: requests.Response, *, submit_saml: bool = True,
               steps: int = 20) -> requests.Response:
        for _ in range(steps):
            self.seen.extend([*resp.history, resp])
            if "text/html" not in resp.headers.get("Content-Type", ""):
                return resp
            form = form_of(resp.text)
            if form is None:
                return resp
            action, fields = form
            if "username" in resp.text and "password" in resp.text and "csrf_token" in fields:
                fields.update(username=self.username, password=self.password)
                resp = self.s.post(self.idp + "/login" if action.startswith("/") or
                                   action == "" else action, data=fields, timeout=10)
                continue
            if submit_saml and ("SAMLResponse" in fields or "SAMLRequest" in fields):
                resp = self.s.post(action, data=fields, timeout=10)
                continue
            return resp
        raise AssertionError("too many steps")

    def saml_form(self, url: str) -> tuple[str, dict[str, str]]:
        """Go until the IdP's auto-submit form; return it unsubmitted."""
        resp = self.go(url, submit_saml=False)
        form = form_of(resp.text)
        assert form is not None, resp.text[:500]
        return form


@dataclass
class Federation:
    idp: LiveIdp
    onelogin: OneLoginSp
    onelogin2: OneLoginSp
    encrypted: OneLoginSp
    pysaml2: Pysaml2Sp

    def browser(self, username: str = "alice", password: str = "alice-password") -> Browser:
        return Browser(self.idp.url, username, password)


def start_federation(keys_dir: Path, tmp: Path,
                     tweak: Callable[[dict[str, Any]], None] | None = None
                     ) -> Iterator[Federation]:
    port = free_port()
    idp_url = f"http://127.0.0.1:{port}"
    sps = {"onelogin": OneLoginSp(free_port(), idp_url),
           "onelogin2": OneLoginSp(free_port(), idp_url, name="second"),
           "encrypted": OneLoginSp(free_port(), idp_url, encrypted=True, name="enc"),
           "pysaml2": Pysaml2Sp(free_port(), idp_url, tmp / "pysaml2-sp")}
    mdir = tmp / "metadata"
    mdir.mkdir()
    for name, sp in sps.items():
        (mdir / f"{name}.xml").write_text(sp.metadata())
    saml: dict[str, Any] = {"service_providers": {
        sp.entity_id: SamlSpOptions(aws_attributes=True) for sp in sps.values()}}
    if tweak:
        tweak(saml)
    config = demo_config(port, keys_dir=keys_dir, metadata_dirs=[mdir], audit="none")
    config = config.model_copy(update={"saml": SamlConfig(**saml)})
    with ExitStack() as stack:
        idp = stack.enter_context(live_idp(config, demo=True, port=port))
        for sp in sps.values():
            stack.enter_context(serve_app(sp.app, sp.port))
        yield Federation(idp, **sps)  # type: ignore[arg-type]


@pytest.fixture
def federation(demo_keys_dir: Path, tmp_path: Path) -> Iterator[Federation]:
    yield from start_federation(demo_keys_dir, tmp_path)
