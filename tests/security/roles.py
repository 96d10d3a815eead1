"""A person who signs in to a live IdP over real HTTP and goes through every door to an AWS
role: SAML (IdP- and SP-initiated to the built-in AWS SP), the federation page's role picker,
``AssumeRoleWithWebIdentity`` with each client's ID and access token, and ``AssumeRole``
chaining.  Each door answers an :class:`Outcome` (credentials, or AWS's error code and HTTP
status as boto3 parsed them from the AWS error XML)."""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lxml import etree

from tests.oidc import rp
from tests.sts.live import _hidden, login, saml_response, sts_client

ACCT = "111122223333"
SAML_PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/demo-idp"
AWS_SP = "urn:amazon:webservices"
ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"
NS = {"saml": "urn:oasis:names:tc:SAML:2.0:assertion"}


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCT}:role/{name}"


@dataclass
class Outcome:
    """What a door gave: credentials and the assumed-role ARN, or an error."""

    creds: dict[str, Any] | None = None
    arn: str | None = None
    code: str | None = None
    status: int = 200


def _call(fn: Any, **kw: Any) -> Outcome:
    try:
        out = fn(**kw)
    except ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        return Outcome(code=exc.response["Error"]["Code"], status=meta["HTTPStatusCode"])
    return Outcome(dict(out["Credentials"]), out["AssumedRoleUser"]["Arn"])


def roles_in(saml_b64: str) -> set[str]:
    """The role ARNs of the ``Role`` attribute of an (unencrypted) SAML response."""
    root = etree.fromstring(base64.b64decode(saml_b64))
    values = root.iterfind(f".//saml:Attribute[@Name='{ROLE_ATTR}']/saml:AttributeValue", NS)
    found = set()
    for v in values:
        parts = [p.strip() for p in "".join(v.itertext()).split(",")]
        assert SAML_PROVIDER in parts, parts
        found |= {p for p in parts if ":role/" in p}
    return found


def claims_of(jwt: str) -> dict[str, Any]:
    """A JWT's payload (the signature is the STS's business, not the test's)."""
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@dataclass
class Person:
    """One demo person signed in to one live IdP (tokens fetched once, assertions fresh)."""

    url: str
    name: str
    browser: requests.Session = field(init=False)
    _tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.browser = login(self.url, self.name)

    # -- SAML ------------------------------------------------------------------------------
    def saml_idp_initiated(self) -> str:
        return saml_response(self.browser, self.url)

    def saml_sp_initiated(self) -> str:
        """An AuthnRequest of the AWS SP (HTTP-Redirect binding, SAML Bindings §3.4)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = (f'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{uuid.uuid4().hex}" '
               f'Version="2.0" IssueInstant="{now}" Destination="{self.url}/saml/sso">'
               f'<saml:Issuer>{AWS_SP}</saml:Issuer></samlp:AuthnRequest>').encode()
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        raw = deflate.compress(xml) + deflate.flush()
        query = urlencode({"SAMLRequest": base64.b64encode(raw).decode()})
        r = self.browser.get(f"{self.url}/saml/sso?{query}")
        assert r.status_code == 200, r.text[:500]
        assert f'action="{self.url}/federation/saml"' in r.text
        return _hidden(r.text, "SAMLResponse")

    def assume_with_saml(self, saml: str, role: str) -> Outcome:
        return _call(sts_client(self.url).assume_role_with_saml, RoleArn=arn(role),
                     PrincipalArn=SAML_PROVIDER, SAMLAssertion=saml)

    def federation_picker(self, saml: str) -> tuple[set[str], str]:
        """The roles the federation page offers, and its CSRF token."""
        r = self.browser.post(f"{self.url}/federation/saml", data={"SAMLResponse": saml})
        assert r.status_code == 200, r.text[:500]
        offered = {html.unescape(v) for v in re.findall(r'name="role" value="([^"]+)"', r.text)}
        return offered, _hidden(r.text, "csrf_token")

    def federation_choose(self, saml: str, csrf: str, role: str) -> tuple[int, str]:
        r = self.browser.post(f"{self.url}/federation/saml", data={
            "SAMLResponse": saml, "csrf_token": csrf, "role": arn(role)})
        return r.status_code, r.text

    # -- web identity ----------------------------------------------------------------------
    def token(self, client: str, kind: str) -> str:
        """``kind`` ``id``/``access`` token of ``client`` for this person (code flow + PKCE)."""
        key = f"{client}/{kind}"
        if key not in self._tokens:
            if client == "demo-cli":
                _, tok, _ = rp.code_flow(self.url, "demo-cli", rp.cli_redirect(), user=self.name)
            else:
                _, tok, _ = rp.code_flow(self.url, rp.WEB[0], rp.WEB[2], secret=rp.WEB[1],
                                         user=self.name)
            self._tokens[f"{client}/id"] = tok["id_token"]
            self._tokens[f"{client}/access"] = tok["access_token"]
        return self._tokens[key]

    def assume_with_token(self, token: str, role: str, session: str | None = None) -> Outcome:
        return _call(sts_client(self.url).assume_role_with_web_identity, RoleArn=arn(role),
                     RoleSessionName=session or self.name, WebIdentityToken=token)


def service_token(url: str) -> str:
    """``demo-service``'s client-credentials access token: it speaks for no person."""
    r = requests.post(f"{url}/oauth2/token", auth=rp.SERVICE, timeout=10,
                      data={"grant_type": "client_credentials", "scope": "roles"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def chain(url: str, creds: dict[str, Any], role: str) -> Outcome:
    return _call(sts_client(url, creds).assume_role, RoleArn=arn(role),
                 RoleSessionName="chained")


def sts_sessions(store: Any) -> int:
    """Temporary credentials held by the (memory) store."""
    return sum(1 for k in list(store._data) if k.startswith("idp:sts:"))


def signed_s3_put(creds: dict[str, Any]) -> tuple[str, str, str, dict[str, str], bytes]:
    """An S3 ``PutObject`` signed with the session, as a resource server receives it."""
    req = AWSRequest(method="PUT", url="http://storage.example.org/b/k", data=b"1,2\n")
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"],
                          creds["SessionToken"]), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items()) | {"Host": "storage.example.org"}
    return "PUT", "/b/k", "", headers, bytes(req.body)
