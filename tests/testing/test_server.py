"""IdpServer: the real app over real HTTP, configured from Python, validated as the YAML is."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from idp.config import OidcClientConfig
from idp.errors import ConfigError
from idp.testing import IdpServer, KitConfig, SamlSp, User
from idp.testing.config import KIT_HASHER
from tests.saml.spapps import make_cert
from tests.testing import onelogin


def test_server_serves_the_real_app_on_its_issuer_url(idp_server: IdpServer) -> None:
    disc = requests.get(idp_server.url + "/.well-known/openid-configuration", timeout=5).json()
    assert disc["issuer"] == idp_server.issuer == idp_server.url
    assert requests.get(idp_server.url + "/healthz", timeout=5).status_code == 200
    assert b"EntityDescriptor" in requests.get(idp_server.saml_metadata_url, timeout=5).content


def test_context_manager_stops_the_server_and_frees_the_port() -> None:
    with IdpServer() as idp:
        port = int(idp.url.rsplit(":", 1)[1])
        assert requests.get(idp.url + "/healthz", timeout=5).ok
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(1)
        s.connect(("127.0.0.1", port))


def test_start_time_is_measured_and_short() -> None:
    with IdpServer() as idp:
        assert 0 < idp.start_seconds < 5


def test_redis_store_url(redis_url: str) -> None:
    with IdpServer(store_url=redis_url) as idp:
        session = idp.login("bob")
        assert "bob" in session.get(idp.url + "/account", timeout=5).text
        assert idp.components.store.__class__.__name__.lower().startswith("redis")


def test_users_groups_and_attributes_from_python() -> None:
    users = [User(username="erin", groups=["engineering"], email="erin@example.org",
                  name="Erin Example"),
             User(username="frank", password="Frank's own secret")]
    with IdpServer(users=users) as idp:
        page = idp.login("erin").get(idp.url + "/account", timeout=5).text
        assert "engineering" in page and "role/Developer" in page
        assert "frank" in idp.login("frank").get(idp.url + "/account", timeout=5).text
        assert idp.passwords == {"erin": "erin-password", "frank": "Frank's own secret"}
        with pytest.raises(Exception, match="no user"):
            idp.saml_response("urn:amazon:webservices", "alice")


def test_kit_users_are_hashed_with_argon2id_at_the_cheap_test_cost(tmp_path: Path) -> None:
    with IdpServer(users=[User(username="gina")]) as idp:
        text = Path(idp.components.config.directory.file.path).read_text()  # type: ignore[union-attr]
        assert "$argon2id$" in text and "m=1024,t=1" in text and "gina-password" not in text
        assert KIT_HASHER.time_cost == 1


@pytest.mark.parametrize(("fields", "located"), [
    pytest.param({"oidc_clients": [{"client_id": "web", "redirect_uris": ["https://x/cb"]}]},
                 "oidc_clients[0]: `client_secret_basic` needs a `client_secret`",
                 id="oidc-client-checked-by-the-yaml-model"),
    pytest.param({"users": [{"username": "a"}, {"username": "A"}]},
                 "duplicate username", id="users-checked-as-the-users-file"),
    pytest.param({"iam": {"roles": [{"name": "R"}],
                          "mapping": [{"role": "Nope", "everyone": True}]}},
                 "iam.mapping[0].role: no role `Nope`", id="iam-mapping-checked-like-yaml"),
    pytest.param({"saml_sps": [{"entity_id": "https://sp"}]},
                 "saml_sps[0]: `entity_id` and `acs_url` go together", id="sp-needs-an-acs"),
    pytest.param({"sts": {"region": "nowhere"}}, "sts.region", id="sts-section-checked"),
    pytest.param({"unknown": 1}, "unknown: Extra inputs are not permitted",
                 id="unknown-keys-are-mistakes"),
])
def test_config_is_validated_like_the_yaml_config(fields: dict[str, object],
                                                   located: str) -> None:
    with pytest.raises(ConfigError) as exc:
        IdpServer(**fields).start()
    assert located in "\n".join(exc.value.problems)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        IdpServer(saml_sps=[{"acs_url": "x"}], oidc_clients=[{"client_id": "a b"}])
    assert len(exc.value.problems) >= 2


def test_saml_sp_from_entity_id_acs_and_certificate(idp_server: IdpServer) -> None:
    sp = idp_server.components.extras["saml"].sps[onelogin.SP_ENTITY]
    assert sp.default_acs().location == onelogin.SP_ACS
    assert sp.signing_certs


def test_saml_sp_from_a_metadata_file(tmp_path: Path) -> None:
    _, cert = make_cert("file-sp")
    meta = tmp_path / "sp.xml"
    from idp.testing.config import sp_metadata

    meta.write_bytes(sp_metadata(SamlSp(entity_id="https://file-sp.example",
                                        acs_url="https://file-sp.example/acs",
                                        certificate=cert)))
    with IdpServer(saml_sps=[SamlSp(metadata_file=meta)]) as idp:
        post = idp.saml_response("https://file-sp.example", "alice")
        assert post.url == "https://file-sp.example/acs"


def test_oidc_clients_and_iam_from_python() -> None:
    kit = KitConfig(
        demo=False, users=[User(username="hana", groups=["data"])],
        oidc_clients=[OidcClientConfig(client_id="app", client_secret="app-secret",
                                       redirect_uris=["http://127.0.0.1:9/cb"])],
        iam={"roles": [{"name": "Analyst", "inline_policies": {"read": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}}}],
             "saml_providers": [{"name": "kit"}],
             "mapping": [{"role": "Analyst", "groups": ["data"]}]})
    with IdpServer(kit) as idp:
        creds = idp.sts_credentials("hana", "Analyst")
        assert creds.assumed_role_arn.startswith("arn:aws:sts::111122223333:assumed-role/Analyst/")
        import jwt

        claims = jwt.decode(idp.id_token("app", "hana"), options={"verify_signature": False})
        assert claims["aud"] == "app" and claims["preferred_username"] == "hana"
