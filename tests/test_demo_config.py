"""`idp demo --config FILE`: a YAML file adds service providers, users and OIDC clients to the
demo (or sets its IAM model and protocol settings); its mistakes are reported like a config's."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from idp.cli import main
from idp.demo import demo_config
from idp.errors import ConfigError
from tests.helpers import make_app
from tests.saml.spapps import make_cert
from tests.saml.test_slo_post import sp_metadata

OVERLAY = """
metadata_dirs: [sps]
users:
  - username: erin
    password: erin-password
    groups: [engineering]
    email: erin@example.org
oidc:
  clients:
    - client_id: my-app
      client_secret: my-app-secret
      redirect_uris: ["http://127.0.0.1:9000/callback"]
"""


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    (tmp_path / "sps").mkdir()
    _key, cert = make_cert("mine")
    (tmp_path / "sps" / "mine.xml").write_text(sp_metadata("https://mine.example/sp", cert))
    path = tmp_path / "demo.yaml"
    path.write_text(OVERLAY)
    return path


def test_demo_config_file_adds_an_sp_a_user_and_a_client_to_the_demo(
        overlay: Path, tmp_path: Path, demo_keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = demo_config(8000, keys_dir=demo_keys_dir, audit="none", overlay=overlay)
    app, comps, _ = make_app(cfg, demo=True)
    saml = comps.extras["saml"]
    assert "https://mine.example/sp" in saml.d.metadata.sps, "the SP of the file"
    assert "urn:amazon:webservices" in saml.d.metadata.sps, "the demo's AWS SP stays"
    clients = comps.extras["oidc"].core.clients
    assert clients.get("my-app") is not None and clients.get("demo-cli") is not None
    erin = comps.directory.authenticate("erin", "erin-password")
    assert erin.groups == ("engineering",)
    assert comps.directory.authenticate("alice", "alice-password").username == "alice"
    comps.close()


@pytest.mark.parametrize(("text", "problem"), [
    pytest.param("database: {url: x}\n", "`database` is not a demo setting",
                 id="unknown setting"),
    pytest.param("users:\n  - username: alice\n    password: other\n",
                 "duplicate username `alice`", id="user clashing with a demo user"),
    pytest.param("oidc: {clients: [{client_id: 'bad id!'}]}\n", "oidc.clients",
                 id="invalid client"),
])
def test_demo_config_file_mistakes_are_reported_and_the_demo_does_not_start(
        tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        demo_config(overlay=path)
    assert any(problem in p for p in info.value.problems), info.value.problems
    result = CliRunner().invoke(main, ["demo", "--config", str(path),
                                       "--keys-dir", str(tmp_path / "keys")])
    assert result.exit_code == 2 and problem in result.output
