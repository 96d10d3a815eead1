"""``idp users mfa list|reset|rekey``: admin commands, audited, never showing secrets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from idp.audit import Auditor, MemorySink, RequestInfo
from idp.cli import main
from idp.config import load_config
from idp.demo import USERS_FILE
from idp.mfa import totp
from idp.mfa.service import open_service
from idp.store.memory import MemoryStore

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def write_config(tmp_path: Path, keys: list[str]) -> Path:
    path = tmp_path / "idp.yaml"
    path.write_text(yaml.safe_dump({
        "issuer": "http://127.0.0.1:8000", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "audit": {"sink": "file", "path": str(tmp_path / "audit.log")},
        "mfa": {"enrolments_dir": str(tmp_path / "mfa"), "encryption_keys": keys}}))
    return path


def enrol(path: Path, user: str) -> None:
    svc = open_service(load_config(path), MemoryStore(), Auditor(MemorySink()))
    svc.enrol_totp_secret(user, SECRET, "phone", RequestInfo())
    svc.regenerate_recovery(user, RequestInfo())


def audit(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]


def test_list_shows_factors_not_secrets_and_is_audited(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["k" * 32])
    enrol(path, "dave")
    r = CliRunner().invoke(main, ["users", "mfa", "list", "--config", str(path), "dave"])
    assert r.exit_code == 0, r.output
    assert "dave: 1 factor(s), 10 recovery code(s) left" in r.output and "'phone'" in r.output
    assert SECRET not in r.output
    assert audit(tmp_path)[-1]["eventName"] == "MfaList"


def test_reset_removes_everything_and_is_audited(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["k" * 32])
    enrol(path, "dave")
    r = CliRunner().invoke(main, ["users", "mfa", "reset", "--config", str(path), "dave"])
    assert r.exit_code == 0, r.output
    svc = open_service(load_config(path), MemoryStore(), Auditor(MemorySink()))
    assert not svc.enrolment("dave").factors and not svc.enrolment("dave").recovery
    rec = audit(tmp_path)[-1]
    assert rec["eventName"] == "MfaReset" and rec["userIdentity"] == {
        "type": "IdpUser", "userName": "dave"}


def test_rekey_after_rotation_then_old_key_dropped(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["old" * 11])
    enrol(path, "dave")
    write_config(tmp_path, ["new" * 11, "old" * 11])
    r = CliRunner().invoke(main, ["users", "mfa", "rekey", "--config", str(path)])
    assert r.exit_code == 0 and "1 secret(s) resealed" in r.output, r.output
    write_config(tmp_path, ["new" * 11])
    svc = open_service(load_config(path), MemoryStore(), Auditor(MemorySink()))
    assert svc.verify("dave", "totp", totp.code_at(SECRET, time.time()), RequestInfo()).kind \
        == "totp"  # decrypts with the new key alone


def test_mfa_doc_example_is_a_valid_config() -> None:
    import re

    from idp.config import parse_config

    doc = (Path(__file__).resolve().parents[2] / "docs" / "mfa.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    cfg = parse_config({"issuer": "https://idp.example.org", "secret_key": "k" * 32,
                        "directory": {"type": "file", "file": {"path": "u.yaml"}},
                        **yaml.safe_load(block)},
                       env={"IDP_MFA_KEY": "m" * 40, "IDP_OPS_TOTP_SECRET": SECRET,
                            "IDP_SMTP_PASSWORD": "p", "IDP_SMS_WEBHOOK_SECRET": "h" * 40})
    assert cfg.mfa.require.roles == ["Operator"] and len(cfg.mfa.devices) == 1
    assert cfg.mfa.email is not None and cfg.mfa.text is not None


def test_config_check_reports_an_enrolments_folder_that_cannot_be_made(tmp_path: Path) -> None:
    path = write_config(tmp_path, ["k" * 32])
    data = yaml.safe_load(path.read_text())
    data["mfa"]["enrolments_dir"] = str(tmp_path / "missing" / "deeper" / "mfa")
    data["keys"] = {"dir": str(tmp_path / "keys"), "generate": True}
    path.write_text(yaml.safe_dump(data))
    r = CliRunner().invoke(main, ["config", "check", str(path)])
    assert r.exit_code != 0 and "mfa.enrolments_dir" in r.output, r.output
