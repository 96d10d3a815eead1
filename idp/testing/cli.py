"""The kit's commands of ``idp``: mock service providers for integration tests
(``mock-sp saml``, ``mock-rp oidc``, ``mock-s3``; see docs/testing.md).  Each serves until
interrupted; none keeps anything on disk."""

from __future__ import annotations

import click

_HOST = click.option("--host", default="127.0.0.1", show_default=True)


def _run(app: object, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)  # type: ignore[arg-type]


@click.group("mock-sp")
def mock_sp() -> None:
    """Mock service providers."""


@mock_sp.command("saml")
@click.option("--idp", "idp_url", required=True, help="the IdP's issuer URL")
@_HOST
@click.option("--port", default=8500, show_default=True, type=click.IntRange(1, 65535))
def mock_sp_saml(idp_url: str, host: str, port: int) -> None:
    """A python3-saml SP: metadata, SP-initiated login (Redirect or POST, signed or not),
    what it received, single logout."""
    from idp.testing.certs import self_signed
    from idp.web.mock_sp import MockSp, create_app

    key, cert = self_signed("idp-mock-sp")
    sp = MockSp(f"http://{host}:{port}", idp_url.rstrip("/"), key, cert)
    click.echo(f"mock SAML SP on {sp.base}  (entity ID {sp.entity_id})")
    click.echo(f"  give the IdP its metadata: curl -o sp.xml {sp.base}/metadata")
    _run(create_app(sp), host, port)


@click.group("mock-rp")
def mock_rp() -> None:
    """Mock relying parties."""


@mock_rp.command("oidc")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--client-secret", envvar="IDP_MOCK_RP_CLIENT_SECRET", default=None,
              help="omit for a public client")
@click.option("--scope", default="openid profile email offline_access", show_default=True)
@_HOST
@click.option("--port", default=8400, show_default=True, type=click.IntRange(1, 65535))
def mock_rp_oidc(issuer: str, client_id: str, client_secret: str | None, scope: str,
                 host: str, port: int) -> None:
    """An Authlib RP: code + PKCE, ID token claims and userinfo, refresh, RP-initiated
    logout (redirect URI http://HOST:PORT/callback)."""
    from idp.web.mock_rp import MockRp, create_app

    rp = MockRp(f"http://{host}:{port}", issuer.rstrip("/"), client_id, client_secret, scope)
    click.echo(f"mock OIDC RP on {rp.base}  (redirect URI {rp.base}/callback)")
    _run(create_app(rp), host, port)


@click.command("mock-s3")
@click.option("--issuer", required=True, help="the IdP whose STS credentials are accepted")
@_HOST
@click.option("--port", default=9000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--client-id", default="demo-service", show_default=True,
              help="confidential OAuth client of the IdP that asks /sts/decide")
@click.option("--client-secret", envvar="IDP_MOCK_S3_CLIENT_SECRET",
              default="demo-service-secret", show_default=True)
@click.option("--bucket", "buckets", multiple=True, help="create this bucket (repeatable)")
def mock_s3(issuer: str, host: str, port: int, client_id: str, client_secret: str,
            buckets: tuple[str, ...]) -> None:
    """An in-memory S3 endpoint that verifies SigV4 with the IdP's STS credentials and
    authorizes every call through its decision endpoint."""
    from idp.testing.mock_s3 import MockS3

    app = MockS3(issuer, client_id=client_id, client_secret=client_secret, buckets=buckets)
    click.echo(f"mock S3 on http://{host}:{port} trusting {issuer.rstrip('/')}/sts")
    click.echo(f"  aws s3 ls --endpoint-url http://{host}:{port}")
    _run(app, host, port)
