"""RSA-2048 PKCS#1 v1.5 and ECDSA P-256 (SHA-256) signs/s with Python's `cryptography`, the
library the project signs with: ``sign_speed.py RSA_KEY.pem EC_KEY.pem`` (run.sh rsa)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def rate(sign: Callable[[], object], seconds: float = 2.0) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sign()
        n += 1
    return n / (time.perf_counter() - start)


def main(rsa_file: str, ec_file: str) -> None:
    data = b"x" * 600
    rsa_key = serialization.load_pem_private_key(Path(rsa_file).read_bytes(), None)
    ec_key = serialization.load_pem_private_key(Path(ec_file).read_bytes(), None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    r = rate(lambda: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    print(f"python cryptography RSA-2048 SHA-256: {r:,.0f} signs/s")
    e = rate(lambda: ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
    print(f"python cryptography ECDSA P-256 SHA-256: {e:,.0f} signs/s")


if __name__ == "__main__":
    main(*sys.argv[1:3])
