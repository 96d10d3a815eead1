"""Log file integrity: each tampering is reported as what it is, a clean trail is valid."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.audit import Auditor, RequestInfo
from idp.audit.trail import TrailSettings, TrailSink, canonical
from idp.audit.verify import Finding, verify
from idp.cli import main
from tests.audit.conftest import T0, TrailFactory

NOW = T0 + 400


def _check(directory: Path, keys: Path, **kwargs: object) -> list[Finding]:
    return verify(directory, [keys / "public"], now=NOW, grace=120, **kwargs)  # type: ignore[arg-type]


def _bad(findings: list[Finding]) -> dict[str, str]:
    return {f.path: f.status for f in findings if not f.ok}


def _logs(directory: Path) -> list[Path]:
    return sorted(directory.glob("logs/*/*.jsonl"))


def _digests(directory: Path) -> list[Path]:
    return sorted(directory.glob("digests/*/*.json"))


def _rel(directory: Path, path: Path) -> str:
    return path.relative_to(directory).as_posix()


def test_clean_trail_is_valid_every_file_and_digest(write_trail: TrailFactory,
                                                     audit_keys: Path) -> None:
    directory = write_trail()
    findings = _check(directory, audit_keys)
    assert _bad(findings) == {}
    assert len(_logs(directory)) == 8 and len(_digests(directory)) == 4
    assert {f.path for f in findings} == {_rel(directory, p)
                                         for p in _logs(directory) + _digests(directory)}
    last = json.loads(_digests(directory)[-1].read_text())
    assert last["final"] is True and last["previousDigestSignature"]


def test_one_byte_changed_is_modified(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    target = _logs(directory)[2]
    data = bytearray(target.read_bytes())
    data[40] ^= 0x01
    target.write_bytes(bytes(data))
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "modified"}


def test_line_removed_is_modified(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    target = _logs(directory)[3]
    lines = target.read_bytes().splitlines(keepends=True)
    target.write_bytes(b"".join(lines[:1] + lines[2:]))  # the middle line: the last stays
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "modified"}


def test_file_truncated_is_truncated(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    target = _logs(directory)[4]
    data = target.read_bytes()
    target.write_bytes(data[: len(data) - 700])
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "truncated"}


def test_file_truncated_at_a_line_end_is_truncated(write_trail: TrailFactory,
                                                   audit_keys: Path) -> None:
    directory = write_trail()
    target = _logs(directory)[4]
    lines = target.read_bytes().splitlines(keepends=True)
    target.write_bytes(b"".join(lines[:-1]))
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "truncated"}


def test_file_deleted_is_deleted(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    target = _logs(directory)[5]
    target.unlink()
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "deleted"}


def test_two_files_swapped_are_reordered(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    a, b = _logs(directory)[1], _logs(directory)[6]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    findings = _check(directory, audit_keys)
    assert _bad(findings) == {_rel(directory, a): "reordered", _rel(directory, b): "reordered"}
    detail = next(f.detail for f in findings if f.path == _rel(directory, a))
    assert _rel(directory, b) in detail


def test_two_digests_swapped_are_reordered(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    a, b = _digests(directory)[1], _digests(directory)[2]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    bad = _bad(_check(directory, audit_keys))
    assert bad[_rel(directory, a)] == "reordered" and bad[_rel(directory, b)] == "reordered"


def _resign(path: Path, key: rsa.RSAPrivateKey, kid: str | None = None,
            **changes: object) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    if kid is not None:
        doc["digestPublicKeyFingerprint"] = kid
    doc["signature"] = key.sign(canonical(doc), padding.PKCS1v15(), hashes.SHA256()).hex()
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize("claimed_kid", [
    pytest.param(None, id="resigned-claiming-the-published-key"),
    pytest.param("attacker-key", id="resigned-naming-its-own-key"),
])
def test_digest_resigned_with_another_key_is_forged(write_trail: TrailFactory,
                                                    audit_keys: Path,
                                                    claimed_kid: str | None) -> None:
    """An attacker edits a log file and re-signs the digest with a key of their own, so the
    hash in the digest matches the edited file."""
    directory = write_trail()
    log = _logs(directory)[0]
    log.write_bytes(log.read_bytes().replace(b"user0", b"user9"))
    digest = _digests(directory)[0]
    doc = json.loads(digest.read_text())
    import hashlib

    doc["logFiles"][0]["hashValue"] = hashlib.sha256(log.read_bytes()).hexdigest()
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _resign(digest, attacker, claimed_kid, logFiles=doc["logFiles"])
    bad = _bad(_check(directory, audit_keys))
    assert bad[_rel(directory, digest)] == "forged"
    assert bad[_rel(directory, log)] == "unsigned"  # no valid digest vouches for it now


def test_digest_missing_is_missing_from_the_chain(write_trail: TrailFactory,
                                                   audit_keys: Path) -> None:
    directory = write_trail()
    target = _digests(directory)[2]
    covered = [e["file"] for e in json.loads(target.read_text())["logFiles"]]
    target.unlink()
    bad = _bad(_check(directory, audit_keys))
    assert bad.pop(_rel(directory, target)) == "missing"
    assert bad == {f: "unsigned" for f in covered}


def test_stream_stopped_without_final_digest_is_a_gap(write_trail: TrailFactory,
                                                      audit_keys: Path) -> None:
    """A writer killed (or its last digests deleted): the chain ends before the stream did."""
    directory = write_trail(close=False)
    bad = _bad(_check(directory, audit_keys))
    assert "gap" in bad.values()
    assert sorted(set(bad.values())) == ["gap", "unsigned"]


def test_digests_not_meeting_in_time_are_a_gap(write_trail: TrailFactory,
                                               audit_keys: Path) -> None:
    """A digest whose period does not start where the previous ended (re-signed by the
    holder of the audit key, so only the times give it away)."""
    from idp.keys import KeyRing

    directory = write_trail()
    ring = KeyRing.load(audit_keys)
    key = ring.active("RS256")
    target = _digests(directory)[2]
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    _resign(target, key.private_key, key.kid, digestStartTime="2026-01-01T00:02:30Z")
    nxt = _digests(directory)[3]
    import hashlib

    doc = json.loads(target.read_text())
    _resign(nxt, key.private_key, key.kid,
            previousDigestHashValue=hashlib.sha256(target.read_bytes()).hexdigest(),
            previousDigestSignature=doc["signature"])
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "gap"}


def test_open_file_of_a_live_stream_is_pending_not_a_failure(tmp_path: Path,
                                                             audit_keys: Path) -> None:
    sink = TrailSink(TrailSettings(tmp_path / "t", audit_keys, roll_seconds=3600))
    Auditor(sink).emit("Login", RequestInfo())
    findings = verify(tmp_path / "t", [audit_keys / "public"])
    assert [f.status for f in findings] == ["pending"]
    sink.close()
    assert [f.status for f in verify(tmp_path / "t", [audit_keys / "public"])] == [
        "valid", "valid"]


def test_window_checks_only_the_files_of_its_periods(write_trail: TrailFactory,
                                                     audit_keys: Path) -> None:
    directory = write_trail()
    _logs(directory)[0].unlink()  # in the first period only
    assert _bad(_check(directory, audit_keys, start=T0 + 120, end=T0 + 170)) == {}
    assert "deleted" in _bad(_check(directory, audit_keys, start=T0, end=T0 + 30)).values()


def test_old_digests_verify_after_the_audit_key_rotates(tmp_path: Path,
                                                        audit_keys: Path) -> None:
    from idp.audit.trail import load_audit_keys
    from idp.keys import rotate_keys

    def write(n: int) -> None:
        sink = TrailSink(TrailSettings(tmp_path / "t", audit_keys, roll_seconds=3600))
        for _ in range(n):
            Auditor(sink).emit("Login", RequestInfo())
        sink.close()

    write(2)
    for _ in range(3):  # the first key is removed from the ring, its public key stays
        rotate_keys(audit_keys, "idp-audit")
        load_audit_keys(audit_keys)
    write(2)
    kids = {json.loads(p.read_text())["digestPublicKeyFingerprint"]
            for p in _digests(tmp_path / "t")}
    assert len(kids) == 2
    assert _bad(verify(tmp_path / "t", [audit_keys / "public"])) == {}


def _writer(directory: str, keys: str, n: int) -> None:
    sink = TrailSink(TrailSettings(Path(directory), Path(keys), roll_seconds=1,
                                   roll_bytes=4096))
    auditor = Auditor(sink)
    for i in range(n):
        auditor.emit("Login", RequestInfo(request_id=f"{os.getpid()}-{i}"),
                     additional={"pad": "y" * 200})
    auditor.close()


def test_several_writer_processes_at_once_still_verify(tmp_path: Path,
                                                       audit_keys: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "t"), str(audit_keys), 300))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    findings = verify(tmp_path / "t", [audit_keys / "public"])
    assert _bad(findings) == {}
    streams = {p.name for p in (tmp_path / "t" / "logs").iterdir()}
    assert len(streams) == 4
    events = [json.loads(line) for p in _logs(tmp_path / "t")
              for line in p.read_text().splitlines()]
    assert len(events) == 1200 and len({e["requestID"] for e in events}) == 1200


def test_forked_child_writes_its_own_stream(tmp_path: Path, audit_keys: Path) -> None:
    """A gunicorn worker forked after the sink was built never appends to the master's
    files."""
    sink = TrailSink(TrailSettings(tmp_path / "t", audit_keys, roll_seconds=3600))
    auditor = Auditor(sink)
    auditor.emit("Start", RequestInfo())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            auditor.emit("Child", RequestInfo())
            auditor.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    auditor.emit("Parent", RequestInfo())
    auditor.close()
    assert len({p.parent.name for p in _logs(tmp_path / "t")}) == 2
    assert _bad(verify(tmp_path / "t", [audit_keys / "public"])) == {}


def _config_file(tmp_path: Path, trail: Path, keys: Path) -> Path:
    from idp.demo import USERS_FILE

    path = tmp_path / "idp.yaml"
    path.write_text(json.dumps({
        "issuer": "http://127.0.0.1:8000", "secret_key": "s" * 40,
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "audit": {"sink": "trail", "dir": str(trail), "keys_dir": str(keys),
                  "roll_seconds": 60}}))
    return path


def test_cli_verify_exit_status_says_whether_all_held(write_trail: TrailFactory,
                                                      audit_keys: Path, tmp_path: Path) -> None:
    directory = write_trail()
    cfg = _config_file(tmp_path, directory, audit_keys)
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "verify", "--config", str(cfg)])
    assert ok.exit_code == 0, ok.output
    assert [line.split()[0] for line in ok.stdout.splitlines()] == ["valid"] * 12
    target = _logs(directory)[1]
    target.write_bytes(target.read_bytes()[:-10])
    bad = runner.invoke(main, ["audit", "verify", "--config", str(cfg), "--quiet"])
    assert bad.exit_code == 1
    assert bad.stdout.strip() == f"truncated  {_rel(directory, target)}  " \
        f"({target.stat().st_size} of {target.stat().st_size + 10} bytes, last event gone)"
    window = runner.invoke(main, ["audit", "verify", "--config", str(cfg),
                                  "--from", "2026-01-01T00:02:00Z",
                                  "--to", "2026-01-01T00:02:50Z"])
    assert window.exit_code == 0, window.output


def test_audit_keys_are_published_over_http_and_verify_a_digest(tmp_path: Path,
                                                                write_trail: TrailFactory,
                                                                audit_keys: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from tests.helpers import config, make_app

    directory = write_trail()
    cfg = config(tmp_path, tmp_path / "keys", audit={
        "sink": "trail", "dir": str(directory), "keys_dir": str(audit_keys)})
    app, _, _ = make_app(cfg)
    body = app.test_client().get("/audit/keys").get_json()
    published = {k["Fingerprint"]: k["Pem"] for k in body["PublicKeyList"]}
    doc = json.loads(_digests(directory)[0].read_text())
    key = load_pem_public_key(published[doc["digestPublicKeyFingerprint"]].encode())
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(bytes.fromhex(doc["signature"]), canonical(doc), padding.PKCS1v15(),
               hashes.SHA256())


def test_cli_audit_keys_rotate_keeps_every_public_key_and_is_audited(
        tmp_path: Path, audit_keys: Path) -> None:
    cfg = _config_file(tmp_path, tmp_path / "trail", audit_keys)
    runner = CliRunner()
    before = runner.invoke(main, ["audit", "keys", "list", "--config", str(cfg)]).stdout
    assert runner.invoke(main, ["audit", "keys", "rotate", "--config", str(cfg)]).exit_code == 0
    assert runner.invoke(main, ["audit", "keys", "rotate", "--config", str(cfg)]).exit_code == 0
    after = runner.invoke(main, ["audit", "keys", "list", "--config", str(cfg)]).stdout
    old_active = next(line.split()[1] for line in before.splitlines() if "active" in line)
    assert old_active in after and len(after.splitlines()) == 4
    events = [json.loads(line) for p in _logs(tmp_path / "trail")
              for line in p.read_text().splitlines()]
    assert [e["eventName"] for e in events] == ["RotateAuditKeys"] * 2
    assert events[0]["userIdentity"]["type"] == "Admin"
    assert _bad(verify(tmp_path / "trail", [audit_keys / "public"])) == {}


def test_config_check_names_the_missing_audit_keys_and_their_command(tmp_path: Path) -> None:
    from idp.app import check_config
    from tests.helpers import config

    cfg = config(tmp_path, tmp_path / "keys", keys={"dir": str(tmp_path / "keys")}, audit={
        "sink": "trail", "dir": str(tmp_path / "trail"), "keys_dir": str(tmp_path / "ak")})
    problems = check_config(cfg).problems
    assert any(p.startswith("audit.keys_dir: no audit keys: run `idp audit keys init`")
               for p in problems), problems
    assert not (tmp_path / "ak").exists()  # the check writes nothing


def test_line_added_is_modified(write_trail: TrailFactory, audit_keys: Path) -> None:
    directory = write_trail()
    target = _logs(directory)[2]
    lines = target.read_bytes().splitlines(keepends=True)
    target.write_bytes(b"".join(lines[:1] + [lines[0].replace(b"user", b"evil")] + lines[1:]))
    assert _bad(_check(directory, audit_keys)) == {_rel(directory, target): "modified"}


def test_digest_edited_without_resigning_is_forged(write_trail: TrailFactory,
                                                   audit_keys: Path) -> None:
    """The hash of an edited log file written into its digest, the signature left as it was."""
    directory = write_trail()
    digest = _digests(directory)[1]
    doc = json.loads(digest.read_text())
    doc["logFiles"][0]["hashValue"] = "0" * 64
    digest.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    bad = _bad(_check(directory, audit_keys))
    assert bad[_rel(directory, digest)] == "forged"
    assert set(bad.values()) == {"forged", "unsigned"}
