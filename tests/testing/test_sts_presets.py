"""STS presets: expired and revoked credentials, refused by this IdP's own SigV4-protected
IAM API (and the expired ones by the STS), as AWS refuses them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from idp.testing import Credentials, IdpServer, KitError


def _client(idp: IdpServer, service: str, creds: Credentials) -> Any:
    return boto3.client(service, endpoint_url=f"{idp.url}/{service}", region_name="us-east-1",
                        **creds.boto3())


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    code: str = exc.value.response["Error"]["Code"]
    return code


def test_fresh_credentials_work(idp_server: IdpServer) -> None:
    creds = idp_server.sts_credentials("alice", "Admin")
    assert _client(idp_server, "iam", creds).list_roles()["Roles"]


def test_expired_credentials_are_refused_with_expired_token(idp_server: IdpServer) -> None:
    creds = idp_server.sts_credentials("alice", "Admin", preset="expired")
    assert _error(_client(idp_server, "iam", creds).list_roles) == "ExpiredToken"
    assert _error(_client(idp_server, "sts", creds).get_caller_identity) == "ExpiredToken"


def test_revoked_credentials_are_refused(idp_server: IdpServer) -> None:
    creds = idp_server.sts_credentials("alice", "Admin", preset="revoked")
    assert _error(_client(idp_server, "iam", creds).list_roles) == "AccessDenied"


def test_expired_preset_respects_the_role_mapping(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="does not give `carol`"):
        idp_server.sts_credentials("carol", "Admin", preset="expired")


def test_unknown_sts_preset_is_refused(idp_server: IdpServer) -> None:
    with pytest.raises(KitError, match="unknown STS preset"):
        idp_server.sts_credentials("alice", "Admin", preset="stolen")


def test_reset_lifts_the_revocation_for_the_next_test(idp_server: IdpServer) -> None:
    idp_server.sts_credentials("alice", "Admin", preset="revoked")
    idp_server.reset()
    creds = idp_server.sts_credentials("alice", "Admin")
    assert _client(idp_server, "iam", creds).list_roles()["Roles"]
