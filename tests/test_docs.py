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


def test_aws_sso_doc_example_trusts_the_portal_and_maps_the_role() -> None:
    """docs/aws-sso.md: its IAM fragment builds, with `aws-sso` among the provider's client
    IDs, so the default trust policy admits portal sessions."""
    block = _yaml_blocks(ROOT / "docs" / "aws-sso.md")[0]
    iam = yaml.safe_load(block)["iam"]
    iam["roles"] = [{"name": "Engineer"}]
    cfg = parse_config({"issuer": "https://idp.example.org", "secret_key": "k" * 32,
                        "directory": {"type": "file", "file": {"path": "u.yaml"}},
                        "iam": iam}, env={})
    model = IamModel.from_config(cfg.iam, cfg.issuer)
    (provider,) = model.oidc_providers.values()
    assert "aws-sso" in provider.client_ids
    grants = model.roles_for(["engineering"], {}, "aws-sso", "oidc")
    assert [g.role_arn for g in grants] == ["arn:aws:iam::111122223333:role/Engineer"]


def test_aws_sso_doc_config_is_what_the_tests_use() -> None:
    """The `~/.aws/config` of docs/aws-sso.md is the one the botocore tests run with."""
    from tests.sso import kit

    doc = (ROOT / "docs" / "aws-sso.md").read_text()
    (ini,) = re.findall(r"```ini\n(.*?)```", doc, re.S)
    tested = kit.aws_config("http://127.0.0.1:8000", services=True)
    for section in ("[sso-session idp]", "[profile dev]", "[services idp-endpoints]"):
        assert _section(ini, section) == _section(tested, section)


def _section(text: str, name: str) -> list[str]:
    lines = text[text.index(name):].splitlines()[1:]
    out = []
    for line in lines:
        if line.startswith("["):
            break
        if line.strip():
            out.append(line)
    return out


def _repo_text_files() -> list[Path]:
    import subprocess

    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return [ROOT / n for n in names
            if n.endswith((".md", ".py", ".yaml", ".yml", ".toml", ".ldif", ".json", ".cfg"))
            or n in ("Dockerfile", "dev")]


def test_nothing_in_the_repo_points_to_files_outside_it() -> None:
    """The repository stands alone: no path to a folder beside it, and the user docs name no
    document that is not in it."""
    outside = re.compile("|".join([r"\.\./" + "shared", "/" + "work/",
                                   "shared/" + "(DESIGN|STYLE|RECIPES)"]))
    offending = [f"{p.relative_to(ROOT)}:{i}" for p in _repo_text_files()
                 for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
                 if outside.search(line)]
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "bench" / "RESULTS.md",
            *(ROOT / "deploy").rglob("*.*")]
    offending += [str(p.relative_to(ROOT)) for p in docs
                  if re.search(r"\b(DESIGN|STYLE|RECIPES)\.md", p.read_text(errors="replace"))]
    assert offending == []


def test_packaging_metadata_uses_an_spdx_license_expression_and_ships_the_license() -> None:
    """PEP 639: ``license`` is an SPDX expression and ``license-files`` names the text (the
    table form makes setuptools print deprecation warnings at every install)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    files = project["project"]["license-files"]
    assert files and all((ROOT / f).is_file() for f in files)
    assert "Apache License" in (ROOT / files[0]).read_text()
    backend = " ".join(project["build-system"]["requires"])
    assert re.search(r"setuptools>=(\d+)", backend) and int(
        re.search(r"setuptools>=(\d+)", backend).group(1)) >= 77  # type: ignore[union-attr]
