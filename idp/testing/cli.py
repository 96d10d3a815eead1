"""The kit's commands of ``idp``: mock service providers for integration tests (``mock-s3``;
see docs/testing.md).  Each serves until interrupted; none keeps anything on disk."""

from __future__ import annotations

import click


@click.command("mock-s3")
@click.option("--issuer", required=True, help="the IdP whose STS credentials are accepted")
@click.option("--host", default="127.0.0.1", show_default=True)
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
    from werkzeug.serving import run_simple

    from idp.testing.mock_s3 import MockS3

    app = MockS3(issuer, client_id=client_id, client_secret=client_secret, buckets=buckets)
    click.echo(f"mock S3 on http://{host}:{port} trusting {issuer.rstrip('/')}/sts")
    click.echo(f"  aws s3 ls --endpoint-url http://{host}:{port}")
    run_simple(host, port, app, threaded=True, use_reloader=False)
