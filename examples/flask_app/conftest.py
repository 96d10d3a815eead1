"""The example app's test setup: the kit IdP (``idp_server``, from the ``idp.testing`` pytest
plugin) knows the app as an OIDC client and as a SAML service provider."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from examples.flask_app.app import Settings, create_app
from idp.testing import IdpServer, SamlSp
from idp.testing.serving import serve


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _key_and_cert() -> tuple[str, str]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example-app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
            cert.public_bytes(serialization.Encoding.PEM).decode())


APP = f"http://127.0.0.1:{_port()}"
KEY, CERT = _key_and_cert()


@pytest.fixture
def idp_server_config() -> Any:
    return {
        "oidc_clients": [{"client_id": "example-app", "client_secret": "example-secret",
                          "redirect_uris": [APP + "/callback"]}],
        "saml_sps": [SamlSp(entity_id=APP + "/saml/metadata", acs_url=APP + "/saml/acs",
                            certificate=CERT)],
    }


@pytest.fixture
def app_url(idp_server: IdpServer) -> Iterator[str]:
    """The example app, served on its port, trusting the kit IdP."""
    port = int(APP.rsplit(":", 1)[1])
    app = create_app(Settings(APP, idp_server.issuer, "example-app", "example-secret",
                              KEY, CERT))
    with serve(app, port=port) as url:
        yield url
