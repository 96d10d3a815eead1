"""Signing keys: RFC 7638 kids, states next → active → retired, files, CLI."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from idp.cli import main
from idp.errors import KeyStoreError
from idp.keys import KeyRing, init_keys, list_keys, rotate_keys, thumbprint


def test_thumbprint_matches_rfc7638_example() -> None:
    """RFC 7638 §3.1: the example RSA key's thumbprint."""
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
             "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
             "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS"
             "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kE"
             "gU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_init_creates_active_and_next_per_algorithm_with_private_files_0600(
        tmp_path: Path) -> None:
    assert init_keys(tmp_path) is True
    assert init_keys(tmp_path) is False  # idempotent
    entries = list_keys(tmp_path)
    assert sorted((e["alg"], e["state"]) for e in entries) == [
        ("ES256", "active"), ("ES256", "next"), ("RS256", "active"), ("RS256", "next")]
    for e in entries:
        mode = stat.S_IMODE((tmp_path / f"{e['kid']}.key.pem").stat().st_mode)
        assert mode == 0o600
    ring = KeyRing.load(tmp_path)
    for k in ring.keys:
        assert k.kid == thumbprint(k.public_jwk)
    assert ring.active("ES256").public_jwk["crv"] == "P-256"
    assert ring.active("RS256").private_key.key_size == 2048  # type: ignore[union-attr]


def test_rotation_publishes_next_before_use_and_keeps_retired_one_round(tmp_path: Path) -> None:
    init_keys(tmp_path)
    ring0 = KeyRing.load(tmp_path)
    active0, next0 = ring0.active("RS256").kid, next(
        k.kid for k in ring0.keys if k.alg == "RS256" and k.state == "next")
    rotate_keys(tmp_path)
    ring1 = KeyRing.load(tmp_path)
    assert ring1.active("RS256").kid == next0  # the published next key now signs
    assert ring1.get(active0) is not None and ring1.get(active0).state == "retired"  # type: ignore[union-attr]
    assert active0 in {k["kid"] for k in ring1.jwks()["keys"]}
    assert active0 not in {k.kid for k in ring1.published(("next", "active"))}
    rotate_keys(tmp_path)
    ring2 = KeyRing.load(tmp_path)
    assert ring2.get(active0) is None
    assert not (tmp_path / f"{active0}.key.pem").exists()


def test_load_without_keys_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="idp keys init"):
        KeyRing.load(tmp_path)


def test_load_with_corrupt_key_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    init_keys(tmp_path)
    kid = list_keys(tmp_path)[0]["kid"]
    (tmp_path / f"{kid}.key.pem").write_text("garbage")
    with pytest.raises(KeyStoreError, match="cannot load key"):
        KeyRing.load(tmp_path)


def test_keys_cli_init_rotate_list(tmp_path: Path) -> None:
    runner = CliRunner()
    d = str(tmp_path / "k")
    r = runner.invoke(main, ["keys", "init", "--dir", d])
    assert r.exit_code == 0 and r.output.count("active") == 2
    r = runner.invoke(main, ["keys", "rotate", "--dir", d])
    assert r.exit_code == 0 and r.output.count("retired") == 2
    r = runner.invoke(main, ["keys", "list", "--dir", d, "--json"])
    assert r.exit_code == 0 and '"state": "next"' in r.output
    assert "PRIVATE KEY" not in r.output
