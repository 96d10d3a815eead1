"""An external IdP registered as an IAM SAML provider (its metadata's signing certificate):
its assertions are accepted for roles that trust it, and only with its own key and issuer."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.iam import IamModel, parse_policy
from idp.iam.model import Account, Role, SamlProvider, entity_id
from idp.keys import KeyRing, SigningKey
from idp.sts import Result
from tests.sts import assertions as A
from tests.sts.conftest import ACCT, ISSUER, Core, make_core
from tests.sts.test_saml import _foreign_key
from tests.sts.util import code, field

EXTERNAL = "https://idp.partner.example"
PROVIDER = f"arn:aws:iam::{ACCT}:saml-provider/partner"
ROLE = f"arn:aws:iam::{ACCT}:role/Partner"


def metadata(key: SigningKey) -> str:
    return f"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{EXTERNAL}/saml/metadata">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{key.cert_b64}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""


def _ec_key() -> SigningKey:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner-ec")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return SigningKey("partner-ec", "ES256", "active", "", key, cert)


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def partner_key(request: pytest.FixtureRequest) -> SigningKey:
    return _foreign_key() if request.param == "RS256" else _ec_key()


@pytest.fixture
def partner(keyring: KeyRing, partner_key: SigningKey) -> Core:
    provider = SamlProvider(PROVIDER, "partner", ACCT, metadata_xml=metadata(partner_key))
    trust = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": PROVIDER},
         "Action": "sts:AssumeRoleWithSAML",
         "Condition": {"StringEquals": {"SAML:aud": ISSUER + "/federation/saml"}}}]},
        "trust", "trust")
    perm = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}, "identity", "p")
    role = Role(ROLE, "Partner", "/", ACCT, entity_id("AROA", ROLE), trust, (perm,))
    return make_core(keyring, IamModel([Account(ACCT)], [role], [], [provider], [], []))


def _call(core: Core, key: SigningKey, issuer: str = EXTERNAL) -> Result:
    spec = A.Spec(issuer, now=dt.datetime.fromtimestamp(core.clock.t, dt.UTC),
                  roles=[f"{ROLE},{PROVIDER}"], audience="https://signin.aws.amazon.com/saml",
                  recipient=ISSUER + "/federation/saml")
    return core.call({"Action": "AssumeRoleWithSAML", "RoleArn": ROLE, "PrincipalArn": PROVIDER,
                      "SAMLAssertion": A.encode(A.signed_response(spec, key))})


def test_external_idp_accepted(partner: Core, partner_key: SigningKey) -> None:
    r = _call(partner, partner_key)
    assert field(r, "AssumedRoleUser/Arn") == f"arn:aws:sts::{ACCT}:assumed-role/Partner/alice"
    assert field(r, "Issuer") == EXTERNAL + "/saml/metadata"


def test_this_idps_key_is_not_the_partners(partner: Core) -> None:
    r = _call(partner, partner.keys.active("RS256"))
    assert code(r) == "InvalidIdentityToken" and partner.stored_sessions() == 0


def test_partner_key_with_another_issuer(partner: Core, partner_key: SigningKey) -> None:
    r = _call(partner, partner_key, issuer="https://someone-else.example")
    assert code(r) == "InvalidIdentityToken" and partner.stored_sessions() == 0
