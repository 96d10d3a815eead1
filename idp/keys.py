"""Signing keys and certificates: generate, load, rotate, publish.

Each key is RSA-2048 (``RS256``, also used for XML signatures) or EC P-256 (``ES256``) with a
self-signed X.509 certificate.  ``kid`` is the JWK thumbprint (RFC 7638 §3).  A key moves
through the states ``next`` → ``active`` → ``retired``: a rotation publishes the next key one
rotation before it signs anything, so relying parties that cache metadata or a JWKS already
know it, and a retired key is still published (for verification) until the rotation after.

Files in the keys folder: ``keys.json`` (the manifest), ``<kid>.key.pem`` (mode 0600) and
``<kid>.crt.pem``.  A :class:`KeyRing` is loaded once per process; private keys are parsed
once (parsing an RSA key costs ~28 ms: never on a hot path).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from idp.errors import KeyStoreError

Alg = Literal["RS256", "ES256"]
State = Literal["next", "active", "retired"]
ALGS: tuple[Alg, ...] = ("RS256", "ES256")
MANIFEST = "keys.json"
CERT_DAYS = 3 * 365

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64u(n: int) -> str:
    return _b64u(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))


def public_jwk(key: PrivateKey) -> dict[str, str]:
    """The public JWK members of a key (RFC 7517 §4, RFC 7518 §6.2/§6.3), without ``kid``."""
    if isinstance(key, rsa.RSAPrivateKey):
        pub = key.public_key().public_numbers()
        return {"kty": "RSA", "e": _int_b64u(pub.e), "n": _int_b64u(pub.n)}
    nums = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64u(nums.x.to_bytes(32, "big")),
            "y": _b64u(nums.y.to_bytes(32, "big"))}


def thumbprint(jwk: dict[str, str]) -> str:
    """JWK thumbprint (RFC 7638 §3): SHA-256 of the required members, sorted, no spaces."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"),
                           sort_keys=True)
    return _b64u(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class SigningKey:
    """One loaded key: the private key object, its certificate and where it stands."""

    kid: str
    alg: Alg
    state: State
    created: str
    private_key: PrivateKey
    certificate: x509.Certificate

    @property
    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def cert_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def cert_b64(self) -> str:
        """The DER certificate in base64, as ``<ds:X509Certificate>`` carries it."""
        return base64.b64encode(
            self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())


class KeyRing:
    """The keys of one keys folder, loaded once."""

    def __init__(self, keys: list[SigningKey], directory: Path | None = None) -> None:
        self.keys = keys
        self.directory = directory
        self._by_kid = {k.kid: k for k in keys}

    def active(self, alg: Alg = "RS256") -> SigningKey:
        """The key that signs now."""
        for k in self.keys:
            if k.alg == alg and k.state == "active":
                return k
        raise KeyStoreError(f"no active `{alg}` key", debug=str(self.directory))

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def published(self, states: tuple[State, ...] = ("next", "active", "retired")
                  ) -> list[SigningKey]:
        """Keys relying parties may verify with (SAML metadata uses next + active)."""
        return [k for k in self.keys if k.state in states]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set (RFC 7517 §5) of every published key."""
        return {"keys": [k.public_jwk for k in self.published()]}

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        """Load every key the manifest lists; raise :class:`KeyStoreError` if unusable."""
        manifest = _read_manifest(directory)
        if not manifest:
            raise KeyStoreError("no signing keys: run `idp keys init`", debug=str(directory))
        keys: list[SigningKey] = []
        for entry in manifest:
            kid = entry["kid"]
            try:
                priv = serialization.load_pem_private_key(
                    (directory / f"{kid}.key.pem").read_bytes(), password=None)
                cert = x509.load_pem_x509_certificate((directory / f"{kid}.crt.pem").read_bytes())
            except (OSError, ValueError) as exc:
                raise KeyStoreError(f"cannot load key `{kid}`", debug=str(exc)) from exc
            if not isinstance(priv, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
                raise KeyStoreError(f"key `{kid}` is neither RSA nor EC")
            alg, state = entry["alg"], entry["state"]
            if alg not in ALGS or state not in ("next", "active", "retired"):
                raise KeyStoreError(f"key `{kid}` has an unknown alg or state")
            keys.append(SigningKey(kid, alg, cast(State, state), entry["created"],
                                   priv, cert))
        ring = cls(keys, directory)
        for alg in ALGS:
            ring.active(alg)
        return ring


def _read_manifest(directory: Path) -> list[dict[str, str]]:
    path = directory / MANIFEST
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeyStoreError("unreadable key manifest", debug=str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyStoreError("unreadable key manifest", debug="no `keys` list")
    return list(data["keys"])


def _write_manifest(directory: Path, entries: list[dict[str, str]]) -> None:
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"keys": entries}, indent=2) + "\n")
    os.replace(tmp, directory / MANIFEST)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _generate(alg: Alg, common_name: str, now: dt.datetime) -> tuple[str, PrivateKey,
                                                                    x509.Certificate]:
    key: PrivateKey = (rsa.generate_private_key(65537, 2048) if alg == "RS256"
                       else ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return thumbprint(public_jwk(key)), key, cert


def _write_key(directory: Path, kid: str, key: PrivateKey, cert: x509.Certificate) -> None:
    path = directory / f"{kid}.key.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    (directory / f"{kid}.crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_entry(directory: Path, alg: Alg, state: State, common_name: str) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    kid, key, cert = _generate(alg, common_name, now)
    _write_key(directory, kid, key, cert)
    return {"kid": kid, "alg": alg, "state": state, "created": now.isoformat(timespec="seconds")}


def init_keys(directory: Path, common_name: str = "idp") -> bool:
    """Create an active and a next key per algorithm; ``False`` if keys already exist."""
    with _locked(directory):
        if _read_manifest(directory):
            return False
        entries = [_new_entry(directory, alg, state, common_name)
                   for alg in ALGS for state in ("active", "next")]
        _write_manifest(directory, entries)
        return True


def rotate_keys(directory: Path, common_name: str = "idp") -> list[dict[str, str]]:
    """One rotation: retired keys are removed, active → retired, next → active, new next."""
    with _locked(directory):
        entries = _read_manifest(directory)
        if not entries:
            raise KeyStoreError("no signing keys: run `idp keys init`")
        kept: list[dict[str, str]] = []
        for e in entries:
            if e["state"] == "retired":
                for suffix in (".key.pem", ".crt.pem"):
                    (directory / f"{e['kid']}{suffix}").unlink(missing_ok=True)
                continue
            e = dict(e, state={"active": "retired", "next": "active"}[e["state"]])
            kept.append(e)
        for alg in ALGS:
            if not any(e["alg"] == alg and e["state"] == "active" for e in kept):
                kept.append(_new_entry(directory, alg, "active", common_name))
            kept.append(_new_entry(directory, alg, "next", common_name))
        _write_manifest(directory, kept)
        return kept


def list_keys(directory: Path) -> list[dict[str, str]]:
    """The manifest entries (no key material)."""
    return _read_manifest(directory)
