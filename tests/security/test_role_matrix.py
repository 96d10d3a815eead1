"""Must-show: the role-escalation matrix.  Every demo person × every door × every role, over
real HTTP against a live IdP: a person obtains a role exactly where the mapping gives it, and
everywhere else the door answers AWS's ``AccessDenied`` (HTTP 403, AWS error XML as boto3
parses it) and no credentials come to exist.

Two worlds (:data:`WORLDS`), every door in each: the demo as shipped (alice: admins,
engineering → Admin, Developer, ReadOnly; bob: engineering → Developer, ReadOnly; carol → ReadOnly)
and roles defined in a config file without ``trust_policy`` (the default trust policy:
Boss ← admins, Builder ← engineering, Member ← everyone, Orphan ← no mapping rule).

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
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
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


@dataclass(frozen=True)
class World:
    """An IdP configuration to attack: who gets which role, and whether the IAM OIDC provider
    lists the issuer (the audience of this IdP's access tokens) among its client IDs."""

    roles: tuple[str, ...]
    mapping: dict[str, set[str]]
    access_tokens: bool


WORLDS = {
    # the demo as shipped: demo_model(), provider client IDs demo-cli and demo-web
    "demo": World(("Admin", "Developer", "ReadOnly"),
                  {"alice": {"Admin", "Developer", "ReadOnly"}, "bob": {"Developer", "ReadOnly"},
                   "carol": {"ReadOnly"}}, access_tokens=False),
    # roles from a config file without trust_policy, Orphan named by no mapping rule
    "config": World(("Boss", "Builder", "Member", "Orphan"),
                    {"alice": {"Boss", "Builder", "Member"}, "bob": {"Builder", "Member"},
                     "carol": {"Member"}}, access_tokens=True),
}
READ_IAM = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}]}


def cells(*names: str, granted_only: bool = False) -> list[Any]:
    """(world, person, role) triples named after whether the mapping grants the role."""
    out = []
    for name in names:
        w = WORLDS[name]
        for p, mine in w.mapping.items():
            for r in w.roles:
                if granted_only and r not in mine:
                    continue
                tag = "granted" if r in mine else "not-granted"
                out.append(pytest.param(name, p, r, id=f"{name}-{p}-{r}-{tag}"))
    return out


CELLS = cells("demo", "config")


class Idp:
    """A live IdP and its signed-in people (each signs in once per module)."""

    def __init__(self, live: LiveIdp, world: World) -> None:
        self.live = live
        self.url = live.url
        self.world = world
        self._people: dict[str, Person] = {}

    def person(self, name: str) -> Person:
        if name not in self._people:
            self._people[name] = Person(self.url, name)
        return self._people[name]

    def gives(self, who: str, role: str) -> bool:
        return role in self.world.mapping[who]

    def sessions(self) -> int:
        return sts_sessions(self.live.components.store)

    def granted(self, role: str, got: Outcome) -> None:
        """The door gave exactly this role, with credentials that work."""
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

    def expect(self, who: str, role: str, got: Outcome, before: int) -> None:
        if self.gives(who, role):
            self.granted(role, got)
        else:
            self.refused(got, before)


def _config(port: int, keys: Path, metadata: Path) -> Any:
    issuer = f"http://127.0.0.1:{port}"
    return parse_config({
        "issuer": issuer, "secret_key": secrets.token_urlsafe(32),
        "store": {"url": "memory://"},
        "directory": {"type": "file", "file": {"path": str(USERS_FILE)}},
        "keys": {"dir": str(keys), "generate": True}, "audit": {"sink": "none"},
        "metadata_dirs": [str(metadata)],
        "iam": {
            "accounts": [{"id": ACCT}],
            "saml_providers": [{"name": "demo-idp"}],
            "oidc_providers": [{"url": issuer, "client_ids": ["demo-cli", "demo-web", issuer]}],
            "roles": [{"name": n, "inline_policies": {"read": READ_IAM}}
                      for n in WORLDS["config"].roles],
            "mapping": [{"role": "Boss", "groups": ["admins"]},
                        {"role": "Builder", "groups": ["engineering"]},
                        {"role": "Member", "everyone": True}],
        },
    })


@pytest.fixture(scope="module")
def idps(demo_keys_dir: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Callable[[str], Idp]]:
    """The worlds' IdPs, each started when a test first needs it, stopped with the module."""
    started: dict[str, Idp] = {}
    with ExitStack() as stack:
        def get(name: str) -> Idp:
            if name not in started:
                port = free_port()
                metadata = tmp_path_factory.mktemp("metadata")
                config = (demo_config(port, keys_dir=demo_keys_dir, metadata_dirs=[metadata],
                                      audit="none") if name == "demo"
                          else _config(port, demo_keys_dir, metadata))
                live = stack.enter_context(live_idp(config, demo=True, port=port))
                started[name] = Idp(live, WORLDS[name])
            return started[name]

        yield get


# -- SAML ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flow", ["idp-initiated", "sp-initiated"])
@pytest.mark.parametrize(("world", "who", "role"), CELLS)
def test_saml_assertion_carries_exactly_the_mapped_roles(idps: Callable[[str], Idp], flow: str,
                                                         world: str, who: str,
                                                         role: str) -> None:
    """SSO to ``urn:amazon:webservices``, then ``AssumeRoleWithSAML`` for the role: the
    assertion lists the mapped roles only, and any other ``RoleArn`` is ``AccessDenied``."""
    idp = idps(world)
    p = idp.person(who)
    saml = p.saml_idp_initiated() if flow == "idp-initiated" else p.saml_sp_initiated()
    assert roles_in(saml) == {arn(r) for r in idp.world.mapping[who]}
    before = idp.sessions()
    idp.expect(who, role, p.assume_with_saml(saml, role), before)


@pytest.mark.parametrize(("world", "who", "role"), CELLS)
def test_federation_page_offers_and_grants_only_the_mapped_roles(
        idps: Callable[[str], Idp], world: str, who: str, role: str) -> None:
    """The role picker offers the assertion's roles; a role posted that it did not offer is
    refused with ``AccessDenied`` (403) and nothing is issued."""
    idp = idps(world)
    p = idp.person(who)
    saml = p.saml_idp_initiated()
    offered, csrf = p.federation_picker(saml)
    assert offered == {arn(r) for r in idp.world.mapping[who]}
    before = idp.sessions()
    status, page = p.federation_choose(saml, csrf, role)
    if idp.gives(who, role):
        assert status == 200 and f"assumed-role/{role}/" in page
        assert idp.sessions() == before + 1
    else:
        assert status == 403 and "AccessDenied" in page
        assert idp.sessions() == before


# -- web identity --------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["demo-cli", "demo-web"])
@pytest.mark.parametrize(("world", "who", "role"), CELLS)
def test_web_identity_id_token_gives_only_the_mapped_roles(
        idps: Callable[[str], Idp], client: str, world: str, who: str, role: str) -> None:
    """The critical hole: carol's or bob's ID token asking for Admin was accepted."""
    idp = idps(world)
    p = idp.person(who)
    token = p.token(client, "id")
    assert sorted(claims_of(token)["roles"]) == sorted(arn(r) for r in idp.world.mapping[who])
    before = idp.sessions()
    idp.expect(who, role, p.assume_with_token(token, role), before)


@pytest.mark.parametrize("client", ["demo-cli", "demo-web"])
@pytest.mark.parametrize(("world", "who", "role"), CELLS)
def test_web_identity_access_token_gives_only_the_mapped_roles(
        idps: Callable[[str], Idp], client: str, world: str, who: str, role: str) -> None:
    """An access token's audience is the issuer (RFC 9068 §3).  In the demo the OIDC provider
    lists the client IDs only, so it is refused for every role (``InvalidIdentityToken``);
    where the provider lists the issuer too, its ``roles`` claim decides like an ID token's."""
    idp = idps(world)
    p = idp.person(who)
    token = p.token(client, "access")
    assert sorted(claims_of(token)["roles"]) == sorted(arn(r) for r in idp.world.mapping[who])
    before = idp.sessions()
    got = p.assume_with_token(token, role)
    if idp.world.access_tokens:
        idp.expect(who, role, got, before)
    else:
        idp.refused(got, before, "InvalidIdentityToken", 400)


@pytest.mark.parametrize(("world", "role"), [
    pytest.param(w, r, id=f"{w}-{r}") for w in WORLDS for r in WORLDS[w].roles])
def test_web_identity_service_token_speaks_for_no_person(idps: Callable[[str], Idp], world: str,
                                                         role: str) -> None:
    """``demo-service`` has only client credentials: its token names no person and its
    ``roles`` claim is empty, so every role refuses it (where its audience is accepted at all,
    the trust policy does: ``AccessDenied``)."""
    idp = idps(world)
    token = service_token(idp.url)
    assert claims_of(token)["roles"] == []
    before = idp.sessions()
    got = idp.person("carol").assume_with_token(token, role, "service")
    if idp.world.access_tokens:
        idp.refused(got, before)
    else:
        idp.refused(got, before, "InvalidIdentityToken", 400)


# -- role chaining and the credentials obtained --------------------------------------------

CHAINS = [pytest.param(w, p, src, dst, id=f"{w}-{p}-{src}-to-{dst}")
          for w in WORLDS for p, mine in WORLDS[w].mapping.items()
          for src in sorted(mine) for dst in WORLDS[w].roles]


@pytest.mark.parametrize(("world", "who", "source", "target"), CHAINS)
def test_role_chaining_never_leaves_the_mapping(idps: Callable[[str], Idp], world: str,
                                                who: str, source: str, target: str) -> None:
    """The default trust policies trust no AWS principal: a role session can chain nowhere,
    not even to another role of the same person (they take it through a door above)."""
    idp = idps(world)
    p = idp.person(who)
    got = p.assume_with_token(p.token("demo-cli", "id"), source)
    idp.granted(source, got)
    assert got.creds is not None
    before = idp.sessions()
    idp.refused(chain(idp.url, got.creds, target), before)


IAM_ANSWERS = {"Admin": True, "Developer": False, "ReadOnly": True}


@pytest.mark.parametrize(("world", "who", "role"), cells("demo", granted_only=True))
def test_iam_and_decide_answer_each_obtained_session_as_its_role(
        idps: Callable[[str], Idp], world: str, who: str, role: str) -> None:
    """What the credentials can do at ``/iam`` and ``/sts/decide`` is the role's: Admin and
    ReadOnly read roles (``iam:Get*``), Developer's policy denies ``iam:*``; ReadOnly may not
    write to S3."""
    idp = idps(world)
    p = idp.person(who)
    got = p.assume_with_token(p.token("demo-web", "id"), role)
    idp.granted(role, got)
    assert got.creds is not None
    iam = sts_client(idp.url, got.creds, "iam")
    if IAM_ANSWERS[role]:
        trust = iam.get_role(RoleName="Admin")["Role"]["AssumeRolePolicyDocument"]
        web = [s for s in trust["Statement"] if "sts:AssumeRoleWithWebIdentity" in s["Action"]]
        assert web and all(s["Condition"]["ForAnyValue:StringEquals"] ==
                           {f"{idp.url.split('://')[1]}:roles": arn("Admin")} for s in web)
    else:
        with pytest.raises(iam.exceptions.ClientError) as info:
            iam.get_role(RoleName="Admin")
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    answer = DecisionClient(idp.url, client_id="demo-service",
                            client_secret="demo-service-secret").decide(
        *signed_s3_put(got.creds), action="s3:PutObject", resource="arn:aws:s3:::b/k")
    assert answer.principal == got.arn
    assert answer.allowed == (role != "ReadOnly")


@pytest.mark.parametrize(("world", "who", "role"), CELLS)
def test_policy_simulate_evaluates_the_trust_policy_as_the_sts_does(
        idps: Callable[[str], Idp], tmp_path: Path, world: str, who: str, role: str) -> None:
    """``idp policy simulate`` with the trust policy ``GetRole`` returns and the context the
    STS builds from the person's token: allowed exactly where the mapping says."""
    idp = idps(world)
    alice = idp.person("alice")
    top = "Admin" if world == "demo" else "Boss"
    admin = alice.assume_with_token(alice.token("demo-cli", "id"), top)
    doc = sts_client(idp.url, admin.creds, "iam").get_role(
        RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    host = idp.url.split("://")[1]
    token = idp.person(who).token("demo-cli", "id")
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
    assert answer == ("Allowed" if idp.gives(who, role) else "ImplicitlyDenied"), answer


def test_refused_role_has_no_credentials_anywhere(idps: Callable[[str], Idp]) -> None:
    """carol → Admin: AccessDenied, nothing stored, audited as a refusal, and a made-up key
    for it is unknown to ``/iam``."""
    idp = idps("demo")
    carol = idp.person("carol")
    before = idp.sessions()
    got = carol.assume_with_token(carol.token("demo-cli", "id"), "Admin")
    idp.refused(got, before)
    refusals = [e for e in idp.live.audit.records
                if e["eventName"] == "AssumeRoleWithWebIdentity"
                and e.get("errorCode") == "AccessDenied"]
    assert refusals
    forged = {"AccessKeyId": "ASIA" + "A" * 16, "SecretAccessKey": "x" * 40,
              "SessionToken": secrets.token_urlsafe(32)}
    iam = sts_client(idp.url, forged, "iam")
    with pytest.raises(iam.exceptions.ClientError) as info:
        iam.get_role(RoleName="Admin")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_config_default_trust_policies_say_the_rule(idps: Callable[[str], Idp]) -> None:
    """``GetRole`` shows the rule: a mapped role's web identity statement requires its own ARN
    in ``<provider>:roles``; the unmapped role has no web identity statement at all."""
    idp = idps("config")
    p = idp.person("alice")
    got = p.assume_with_token(p.token("demo-cli", "id"), "Boss")
    iam = sts_client(idp.url, got.creds, "iam")
    host = idp.url.split("://")[1]
    for name in idp.world.roles:
        doc: dict[str, Any] = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        web = [s for s in doc["Statement"] if "sts:AssumeRoleWithWebIdentity" in s["Action"]]
        if name == "Orphan":
            assert web == []
            continue
        [statement] = web
        assert statement["Condition"] == {
            "StringEquals": {f"{host}:aud": ["demo-cli", "demo-web", idp.url]},
            "ForAnyValue:StringEquals": {f"{host}:roles": arn(name)}}
