"""boto3's ``sso-oidc`` and ``sso`` clients, and botocore's own SSO token and credential
providers, against a live demo IdP (approval through the ``/device`` page's forms)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.credentials
import botocore.tokens
import pytest
from botocore.exceptions import ClientError

from idp.demo import demo_config
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.sso import kit


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return (exc.value.response["Error"]["Code"],
            exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_device_flow_pending_then_slow_down_then_tokens(demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    oidc = kit.client("sso-oidc", url)
    reg = kit.register(oidc)
    assert reg["clientId"].startswith("sso.") and reg["clientSecret"]
    assert reg["clientSecretExpiresAt"] - reg["clientIdIssuedAt"] == 90 * 86400
    start = oidc.start_device_authorization(clientId=reg["clientId"],
                                            clientSecret=reg["clientSecret"],
                                            startUrl=url + "/start")
    assert start["verificationUriComplete"].startswith(url + "/device?user_code=")
    poll = {"clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
            "grantType": kit.DEVICE, "deviceCode": start["deviceCode"]}
    with pytest.raises(ClientError) as pending:
        oidc.create_token(**poll)
    assert _code(pending) == ("AuthorizationPendingException", 400)
    assert pending.value.response["error"] == "authorization_pending"  # modeled member
    with pytest.raises(ClientError) as fast:
        oidc.create_token(**poll)
    assert _code(fast) == ("SlowDownException", 400)

    kit.approve(url, "bob", start["userCode"])
    token = oidc.create_token(**poll)
    assert token["tokenType"] == "Bearer" and token["expiresIn"] > 0
    assert token["accessToken"] and token["refreshToken"]
    with pytest.raises(ClientError) as again:  # a device code is used once
        oidc.create_token(**poll)
    assert _code(again) == ("InvalidGrantException", 400)
    names = [r["eventName"] for r in demo_idp.audit.records]
    assert "SsoRegisterClient" in names and "OidcDeviceApproved" in names


def test_denied_on_the_device_page_is_access_denied(demo_idp: LiveIdp) -> None:
    oidc = kit.client("sso-oidc", demo_idp.url)
    reg = kit.register(oidc)
    start = oidc.start_device_authorization(clientId=reg["clientId"],
                                            clientSecret=reg["clientSecret"],
                                            startUrl=demo_idp.url + "/start")
    kit.approve(demo_idp.url, "carol", start["userCode"], decision="deny")
    with pytest.raises(ClientError) as denied:
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType=kit.DEVICE, deviceCode=start["deviceCode"])
    assert _code(denied) == ("AccessDeniedException", 400)


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HOME and AWS_CONFIG_FILE in tmp, no credentials or endpoints from the environment."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_SSO", "AWS_ENDPOINT_URL_SSO_OIDC", "AWS_ENDPOINT_URL_STS",
                 "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / ".aws" / "credentials"))
    (tmp_path / ".aws").mkdir()
    # botocore reads ~ when it is imported: point its token cache at the new HOME
    cache = str(tmp_path / ".aws" / "sso" / "cache")
    monkeypatch.setattr(botocore.tokens.SSOTokenProvider, "_SSO_TOKEN_CACHE_DIR", cache)
    monkeypatch.setattr(botocore.credentials.SSOProvider, "_SSO_TOKEN_CACHE_DIR", cache)
    yield tmp_path


@pytest.fixture
def hour_idp(demo_keys_dir: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """The demo with one-hour access tokens: botocore refreshes an SSO token only in its last
    15 minutes, so the first use must not refresh."""
    port = free_port()
    config = demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[tmp_path / "metadata"],
                         audit="none")
    config = config.model_copy(update={"oidc": config.oidc.model_copy(
        update={"access_token_ttl": 3600})})
    with live_idp(config, demo=True, port=port) as idp:
        yield idp


@pytest.mark.parametrize("endpoints", ["services-section", "environment-variables"])
def test_botocore_sso_providers_get_developer_credentials_and_refresh_the_token(
        hour_idp: LiveIdp, aws_home: Path, monkeypatch: pytest.MonkeyPatch,
        endpoints: str) -> None:
    demo_idp = hour_idp
    url = demo_idp.url
    services = endpoints == "services-section"
    (aws_home / ".aws" / "config").write_text(kit.aws_config(url, services=services))
    if not services:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSO_OIDC", url + "/sso-oidc")
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", url + "/sso-portal")
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", url + "/sts")
    reg, token = kit.sign_in(url, "bob")
    cache = kit.cache_token(aws_home, "idp", url, reg, token)

    who = boto3.Session(profile_name="dev").client("sts").get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::111122223333:assumed-role/Developer/bob"
    names = [r["eventName"] for r in demo_idp.audit.records]
    assert "GetRoleCredentials" in names and "OidcRefresh" not in names

    # near expiry (botocore refreshes within 15 minutes of expiresAt): CreateToken with the
    # refresh token, by botocore itself, and the new token is written back to the cache
    kit.cache_token(aws_home, "idp", url, reg, token, expires_in=60)
    who = boto3.Session(profile_name="readonly").client("sts").get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::111122223333:assumed-role/ReadOnly/bob"
    refreshed = json.loads(cache.read_text())
    assert refreshed["accessToken"] != token["accessToken"]
    assert refreshed["refreshToken"] != token["refreshToken"]  # rotated
    assert "OidcRefresh" in [r["eventName"] for r in demo_idp.audit.records]

    with pytest.raises(ClientError) as no:  # bob has no Admin in the mapping
        boto3.Session(profile_name="admin").client("sts").get_caller_identity()
    assert no.value.response["Error"]["Code"] == "ForbiddenException"


def test_bob_asking_for_admin_is_forbidden(demo_idp: LiveIdp) -> None:
    _, token = kit.sign_in(demo_idp.url, "bob")
    sso = kit.client("sso", demo_idp.url)
    with pytest.raises(ClientError) as exc:
        sso.get_role_credentials(roleName="Admin", accountId=kit.ACCT,
                                 accessToken=token["accessToken"])
    assert _code(exc) == ("ForbiddenException", 403)
    refused = [r for r in demo_idp.audit.records if r["eventName"] == "GetRoleCredentials"]
    assert refused and refused[-1]["errorCode"] == "ForbiddenException"


def test_logged_out_token_is_unauthorized_and_cannot_refresh(demo_idp: LiveIdp) -> None:
    url = demo_idp.url
    reg, token = kit.sign_in(url, "alice")
    sso = kit.client("sso", url)
    assert sso.list_accounts(accessToken=token["accessToken"])["accountList"]
    sso.logout(accessToken=token["accessToken"])
    for call in (lambda: sso.list_accounts(accessToken=token["accessToken"]),
                 lambda: sso.get_role_credentials(roleName="ReadOnly", accountId=kit.ACCT,
                                                  accessToken=token["accessToken"])):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == ("UnauthorizedException", 401)
    refused = [r for r in demo_idp.audit.records if r["eventName"] == "GetRoleCredentials"]
    assert refused[-1]["errorCode"] == "UnauthorizedException"
    assert "SsoLogout" in [r["eventName"] for r in demo_idp.audit.records]
    with pytest.raises(ClientError) as refresh:
        kit.client("sso-oidc", url).create_token(
            clientId=reg["clientId"], clientSecret=reg["clientSecret"],
            grantType="refresh_token", refreshToken=token["refreshToken"])
    assert _code(refresh) == ("InvalidGrantException", 400)


def test_paginators_list_accounts_and_roles(demo_idp: LiveIdp) -> None:
    _, token = kit.sign_in(demo_idp.url, "alice")
    sso = kit.client("sso", demo_idp.url)
    pages = list(sso.get_paginator("list_account_roles").paginate(
        accessToken=token["accessToken"], accountId=kit.ACCT,
        PaginationConfig={"PageSize": 1}))
    assert [len(p["roleList"]) for p in pages] == [1, 1, 1]
    assert [r["roleName"] for p in pages for r in p["roleList"]] == list(kit.ROLES)
    accounts = list(sso.get_paginator("list_accounts").paginate(
        accessToken=token["accessToken"], PaginationConfig={"PageSize": 1}))
    assert [a for p in accounts for a in p["accountList"]] == [
        {"accountId": kit.ACCT, "accountName": "demo"}]
    assert sso.list_account_roles(accessToken=token["accessToken"],
                                  accountId="999999999999")["roleList"] == []


def test_role_matrix_get_role_credentials_gives_exactly_the_mapping(
        demo_idp: LiveIdp) -> None:
    """alice, bob, carol × Admin, Developer, ReadOnly: allowed exactly where the mapping says
    (DESIGN.md "The demo"), and the credentials are that role's."""
    sso = kit.client("sso", demo_idp.url)
    seen: dict[tuple[str, str], bool] = {}
    for user in kit.MAPPING:
        _, token = kit.sign_in(demo_idp.url, user)
        listed = {r["roleName"] for r in sso.list_account_roles(
            accessToken=token["accessToken"], accountId=kit.ACCT)["roleList"]}
        assert listed == kit.MAPPING[user]
        for role in kit.ROLES:
            try:
                creds = sso.get_role_credentials(roleName=role, accountId=kit.ACCT,
                                                 accessToken=token["accessToken"])
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ForbiddenException"
                seen[(user, role)] = False
                continue
            c = creds["roleCredentials"]
            assert c["expiration"] > time.time() * 1000
            sts = boto3.client("sts", endpoint_url=demo_idp.url + "/sts",
                               region_name="us-east-1", aws_access_key_id=c["accessKeyId"],
                               aws_secret_access_key=c["secretAccessKey"],
                               aws_session_token=c["sessionToken"])
            arn = sts.get_caller_identity()["Arn"]
            assert arn == f"arn:aws:sts::{kit.ACCT}:assumed-role/{role}/{user}"
            seen[(user, role)] = True
    assert seen == {(u, r): r in kit.MAPPING[u] for u in kit.MAPPING for r in kit.ROLES}
