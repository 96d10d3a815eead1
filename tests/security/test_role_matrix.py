"""Must-show: the role-escalation matrix.  Every demo person × every door × every role, over
real HTTP against a live IdP: a person obtains a role exactly where the mapping gives it, and
everywhere else the door answers AWS's ``AccessDenied`` (HTTP 403, AWS error XML as boto3
parses it) and no credentials come to exist.  Then the same for roles defined in a config file
without an explicit trust policy (the default trust policy), including a role the mapping gives
to no one.

The demo mapping: alice (admins, engineering) → Admin, Developer, ReadOnly; bob (engineering)
→ Developer, ReadOnly; carol (no group) → ReadOnly.

Doors: SAML through IdP-initiated and SP-initiated SSO to the built-in AWS SP, then
``AssumeRoleWithSAML``; the federation page's role picker; ``AssumeRoleWithWebIdentity`` with
the ID token and the access token of ``demo-cli`` and ``demo-web``, and with ``demo-service``'s
client-credentials access token (that client cannot get a token for a person); ``AssumeRole``
chaining from every role session obtained to every role.  A forged ``Role`` attribute cannot be
made without the IdP's key, so for SAML the test shows that the IdP-issued assertion carries
exactly the mapped roles and that any other ``RoleArn`` is refused.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idp.config import parse_config
from idp.demo import USERS_FILE, demo_config
from idp.iam.cli import policy
from idp.sts import DecisionClient
from tests.fixtures.live import LiveIdp, live_idp
from tests.fixtures.servers import free_port
from tests.security.roles import (
    ACCT,
    Outcome,
    Person,
    arn,
    chain,
    claims_of,
    roles_in,
    service_token,
    signed_s3_put,
    sts_sessions,
)
from tests.sts.live import sts_client

ROLES = ("Admin", "Developer", "ReadOnly")
MAPPING = {"alice": {"Admin", "Developer", "ReadOnly"}, "bob": {"Developer", "ReadOnly"},
           "carol": {"ReadOnly"}}


def cells(mapping: dict[str, set[str]], roles: tuple[str, ...]) -> list[Any]:
    """(person, role) pairs named after whether the mapping grants the role."""
    return [pytest.param(p, r, id=f"{p}-{r}-{'granted' if r in mapping[p] else 'not-granted'}")
            for p in mapping for r in roles]


CELLS = cells(MAPPING, ROLES)


class Idp:
    """A live IdP and its signed-in people (each signs in once per module)."""

    def __init__(self, live: LiveIdp) -> None:
        self.live = live
        self.url = live.url
        self._people: dict[str, Person] = {}

    def person(self, name: str) -> Person:
        if name not in self._people:
            self._people[name] = Person(self.url, name)
        return self._people[name]

    def sessions(self) -> int:
        return sts_sessions(self.live.components.store)

    def granted(self, who: str, role: str, got: Outcome) -> None:
        """The door gave exactly this role to exactly this person."""
        assert got.code is None, got
        assert got.creds is not None and got.creds["AccessKeyId"].startswith("ASIA")
        assert got.arn is not None and got.arn.startswith(
            f"arn:aws:sts::{ACCT}:assumed-role/{role}/")
        who_am_i = sts_client(self.url, got.creds).get_caller_identity()
        assert who_am_i["Arn"] == got.arn

    def refused(self, got: Outcome, before: int, code: str = "AccessDenied",
                status: int = 403) -> None:
        """AWS's error, and no temporary credentials were stored."""
        assert (got.code, got.status) == (code, status), got
        assert got.creds is None
        assert self.sessions() == before


@pytest.fixture(scope="module")
def demo(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    port = free_port()
    config = demo_config(port, keys_dir=demo_keys_dir,
                         metadata_dirs=[tmp_path_factory.mktemp("metadata")], audit="none")
    with live_idp(config, demo=True, port=port) as live:
        yield Idp(live)


def expect(idp: Idp, who: str, role: str, granted: set[str], got: Outcome, before: int) -> None:
    if role in granted:
        idp.granted(who, role, got)
    else:
        idp.refused(got, before)


# -- SAML ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flow", ["idp-initiated", "sp-initiated"])
@pytest.mark.parametrize(("who", "role"), CELLS)
def test_saml_assertion_carries_exactly_the_mapped_roles(demo: Idp, flow: str, who: str,
                                                         role: str) -> None:
    p = demo.person(who)
    saml = p.saml_idp_initiated() if flow == "idp-initiated" else p.saml_sp_initiated()
    assert roles_in(saml) == {arn(r) for r in MAPPING[who]}
    before = demo.sessions()
    expect(demo, who, role, MAPPING[who], p.assume_with_saml(saml, role), before)


@pytest.mark.parametrize(("who", "role"), CELLS)
def test_federation_page_offers_and_grants_only_the_mapped_roles(demo: Idp, who: str,
                                                                 role: str) -> None:
    p = demo.person(who)
    saml = p.saml_idp_initiated()
    offered, csrf = p.federation_picker(saml)
    assert offered == {arn(r) for r in MAPPING[who]}
    before = demo.sessions()
    status, page = p.federation_choose(saml, csrf, role)
    if role in MAPPING[who]:
        assert status == 200 and f"assumed-role/{role}/" in page
        assert demo.sessions() == before + 1
    else:  # a role posted that the picker did not offer
        assert status == 403 and "AccessDenied" in page
        assert demo.sessions() == before


# -- web identity --------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["demo-cli", "demo-web"])
@pytest.mark.parametrize(("who", "role"), CELLS)
def test_web_identity_id_token_gives_only_the_mapped_roles(demo: Idp, client: str, who: str,
                                                           role: str) -> None:
    """The critical hole: carol's or bob's ID token asking for Admin was accepted."""
    p = demo.person(who)
    token = p.token(client, "id")
    assert sorted(claims_of(token)["roles"]) == sorted(arn(r) for r in MAPPING[who])
    before = demo.sessions()
    expect(demo, who, role, MAPPING[who], p.assume_with_token(token, role), before)


@pytest.mark.parametrize("client", ["demo-cli", "demo-web"])
@pytest.mark.parametrize(("who", "role"), CELLS)
def test_web_identity_access_token_is_not_for_sts_in_the_demo(demo: Idp, client: str, who: str,
                                                              role: str) -> None:
    """The demo's OIDC provider lists the client IDs only; an access token's audience is the
    issuer (RFC 9068 §3), so it is refused for every role (the config matrix below lets access
    tokens in and shows their ``roles`` claim decides)."""
    p = demo.person(who)
    token = p.token(client, "access")
    assert sorted(claims_of(token)["roles"]) == sorted(arn(r) for r in MAPPING[who])
    before = demo.sessions()
    demo.refused(p.assume_with_token(token, role), before, "InvalidIdentityToken", 400)


@pytest.mark.parametrize("role", ROLES)
def test_web_identity_service_token_speaks_for_no_person(demo: Idp, role: str) -> None:
    token = service_token(demo.url)
    assert claims_of(token)["roles"] == []
    before = demo.sessions()
    got = demo.person("carol").assume_with_token(token, role, "service")
    demo.refused(got, before, "InvalidIdentityToken", 400)


# -- role chaining and the credentials obtained --------------------------------------------

CHAINS = [pytest.param(p, src, dst, id=f"{p}-{src}-to-{dst}")
          for p in MAPPING for src in sorted(MAPPING[p]) for dst in ROLES]


@pytest.mark.parametrize(("who", "source", "target"), CHAINS)
def test_role_chaining_never_leaves_the_mapping(demo: Idp, who: str, source: str,
                                                target: str) -> None:
    """The default trust policies trust no AWS principal: a role session can chain nowhere,
    not even to another role of the same person (they take it through a door above)."""
    p = demo.person(who)
    got = p.assume_with_token(p.token("demo-cli", "id"), source)
    demo.granted(who, source, got)
    assert got.creds is not None
    before = demo.sessions()
    demo.refused(chain(demo.url, got.creds, target), before)


IAM_ANSWERS = {"Admin": True, "Developer": False, "ReadOnly": True}


@pytest.mark.parametrize(("who", "role"), [c for c in CELLS if "not-granted" not in str(c.id)])
def test_iam_answers_each_obtained_session_as_its_role(demo: Idp, who: str, role: str) -> None:
    """What the credentials can do at ``/iam`` is the role's: Admin and ReadOnly read roles
    (``iam:Get*``), Developer's policy denies ``iam:*``."""
    p = demo.person(who)
    got = p.assume_with_token(p.token("demo-web", "id"), role)
    demo.granted(who, role, got)
    iam = sts_client(demo.url, got.creds, "iam")
    if IAM_ANSWERS[role]:
        trust = iam.get_role(RoleName="Admin")["Role"]["AssumeRolePolicyDocument"]
        web = [s for s in trust["Statement"] if "sts:AssumeRoleWithWebIdentity" in s["Action"]]
        assert web and all(s["Condition"]["ForAnyValue:StringEquals"] ==
                           {f"{demo.url.split('://')[1]}:roles": arn("Admin")} for s in web)
    else:
        with pytest.raises(iam.exceptions.ClientError) as info:
            iam.get_role(RoleName="Admin")
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    # a resource server asking /sts/decide learns the same principal
    assert got.creds is not None
    answer = DecisionClient(demo.url, client_id="demo-service",
                            client_secret="demo-service-secret").decide(
        *signed_s3_put(got.creds), action="s3:PutObject", resource="arn:aws:s3:::b/k")
    assert answer.principal == got.arn
    assert answer.allowed == (role != "ReadOnly")


@pytest.mark.parametrize(("who", "role"), CELLS)
def test_policy_simulate_evaluates_the_trust_policy_as_the_sts_does(
        demo: Idp, tmp_path: Path, who: str, role: str) -> None:
    """``idp policy simulate`` with the trust policy ``GetRole`` returns and the context the
    STS builds from the person's token: allowed exactly where the mapping says."""
    alice = demo.person("alice")
    admin = alice.assume_with_token(alice.token("demo-cli", "id"), "Admin")
    doc = sts_client(demo.url, admin.creds, "iam").get_role(
        RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    host = demo.url.split("://")[1]
    token = demo.person(who).token("demo-cli", "id")
    entry = {"request": {
        "principal": f"arn:aws:iam::{ACCT}:oidc-provider/{host}",
        "action": "sts:AssumeRoleWithWebIdentity", "resource": arn(role),
        "context": {f"{host}:aud": "demo-cli", f"{host}:roles": claims_of(token)["roles"]}},
        "resourcePolicy": doc}
    path = tmp_path / "simulate.json"
    path.write_text(json.dumps(entry))
    result = CliRunner().invoke(policy, ["simulate", str(path)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)["response"]
    assert answer == ("Allowed" if role in MAPPING[who] else "ImplicitlyDenied"), answer


def test_refused_role_has_no_credentials_anywhere(demo: Idp) -> None:
    """carol → Admin: AccessDenied, nothing stored, audited as a refusal, and a made-up key
    for it is unknown to ``/iam``."""
    carol = demo.person("carol")
    before = demo.sessions()
    got = carol.assume_with_token(carol.token("demo-cli", "id"), "Admin")
    demo.refused(got, before)
    refusals = [e for e in demo.live.audit.records
                if e["eventName"] == "AssumeRoleWithWebIdentity"
                and e.get("errorCode") == "AccessDenied"]
    assert refusals
    forged = {"AccessKeyId": "ASIA" + "A" * 16, "SecretAccessKey": "x" * 40,
              "SessionToken": secrets.token_urlsafe(32)}
    iam = sts_client(demo.url, forged, "iam")
    with pytest.raises(iam.exceptions.ClientError) as info:
        iam.get_role(RoleName="Admin")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# -- roles from a config file, default trust policy ----------------------------------------

CONFIG_ROLES = ("Boss", "Builder", "Member", "Orphan")
CONFIG_MAPPING = {"alice": {"Boss", "Builder", "Member"}, "bob": {"Builder", "Member"},
                  "carol": {"Member"}}
CONFIG_CELLS = cells(CONFIG_MAPPING, CONFIG_ROLES)
READ_IAM = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}]}


@pytest.fixture(scope="module")
def configured(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    """Roles without ``trust_policy``; the OIDC provider also lists the issuer, the audience of
    this IdP's access tokens, so access tokens reach the trust policy too."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = parse_config({
        "issuer": issuer, "secret_key": secrets.token_urlsafe(32),
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(demo_keys_dir), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(tmp_path_factory.mktemp("metadata"))],
        "iam": {
            "accounts": [{"id": ACCT}],
            "saml_providers": [{"name": "demo-idp"}],
            "oidc_providers": [{"url": issuer,
                                "client_ids": ["demo-cli", "demo-web", issuer]}],
            "roles": [{"name": n, "inline_policies": {"read": READ_IAM}} for n in CONFIG_ROLES],
            "mapping": [{"role": "Boss", "groups": ["admins"]},
                        {"role": "Builder", "groups": ["engineering"]},
                        {"role": "Member", "everyone": True}],
        },
    })
    with live_idp(config, demo=True, port=port) as live:
        yield Idp(live)


@pytest.mark.parametrize(("who", "role"), CONFIG_CELLS)
def test_config_role_saml(configured: Idp, who: str, role: str) -> None:
    p = configured.person(who)
    saml = p.saml_idp_initiated()
    assert roles_in(saml) == {arn(r) for r in CONFIG_MAPPING[who]}
    before = configured.sessions()
    expect(configured, who, role, CONFIG_MAPPING[who], p.assume_with_saml(saml, role), before)


@pytest.mark.parametrize("kind", ["id", "access"])
@pytest.mark.parametrize("client", ["demo-cli", "demo-web"])
@pytest.mark.parametrize(("who", "role"), CONFIG_CELLS)
def test_config_role_web_identity(configured: Idp, client: str, kind: str, who: str,
                                  role: str) -> None:
    p = configured.person(who)
    token = p.token(client, kind)
    before = configured.sessions()
    expect(configured, who, role, CONFIG_MAPPING[who], p.assume_with_token(token, role), before)


@pytest.mark.parametrize("role", CONFIG_ROLES)
def test_config_role_refuses_the_service_token(configured: Idp, role: str) -> None:
    """A client-credentials token has an empty ``roles`` claim: its audience is accepted, the
    trust policy still refuses it."""
    before = configured.sessions()
    got = configured.person("carol").assume_with_token(service_token(configured.url), role,
                                                       "service")
    configured.refused(got, before)


def test_config_default_trust_policies_say_the_rule(configured: Idp) -> None:
    """``GetRole`` shows the rule: a mapped role's web identity statement requires its own ARN
    in ``<provider>:roles``; the unmapped role has no web identity statement at all."""
    p = configured.person("alice")
    got = p.assume_with_token(p.token("demo-cli", "id"), "Boss")
    iam = sts_client(configured.url, got.creds, "iam")
    host = configured.url.split("://")[1]
    for name in CONFIG_ROLES:
        doc: dict[str, Any] = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        web = [s for s in doc["Statement"] if "sts:AssumeRoleWithWebIdentity" in s["Action"]]
        if name == "Orphan":
            assert web == []
            continue
        [statement] = web
        assert statement["Condition"] == {
            "StringEquals": {f"{host}:aud": ["demo-cli", "demo-web", configured.url]},
            "ForAnyValue:StringEquals": {f"{host}:roles": arn(name)}}
