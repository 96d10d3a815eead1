"""The configuration examples in the docs are valid: they are what users copy."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from idp.config import parse_config
from idp.iam import IamModel

ROOT = Path(__file__).resolve().parents[1]


def _yaml_blocks(doc: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)


def test_iam_doc_example_builds_a_model_with_its_role_mapping() -> None:
    (block,) = _yaml_blocks(ROOT / "docs" / "iam.md")
    cfg = parse_config({"issuer": "https://idp.example.org", "secret_key": "k" * 32,
                        "directory": {"type": "file", "file": {"path": "u.yaml"}},
                        **yaml.safe_load(block)}, env={})
    model = IamModel.from_config(cfg.iam, cfg.issuer)
    grants = model.roles_for(["engineering"], {"email": "e@example.org"}, None)
    assert [g.role_arn for g in grants] == ["arn:aws:iam::123456789012:role/Engineer"]
    assert grants[0].principal_tags == {"team": "engineering", "email": "e@example.org"}


def test_readme_configuration_example_is_valid() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Configuration.*?```yaml\n(.*?)```", readme, re.S)
    assert block
    cfg = parse_config(yaml.safe_load(block.group(1)), env={
        "IDP_SECRET_KEY": "k" * 48, "LDAP_BIND_PASSWORD": "x"})
    assert cfg.directory.type == "ldap" and cfg.store.url.startswith("redis://")
