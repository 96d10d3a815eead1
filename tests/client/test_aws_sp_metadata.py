"""AWS's own SP metadata (entity ID ``urn:amazon:webservices``) beside the built-in SP: the
file replaces the built-in entry, with a notice, so IdP-initiated SSO reaches the real AWS
console; a second file naming it is still refused."""

from __future__ import annotations

from pathlib import Path

from idp.saml.metadata import AWS_ENTITY_ID, aws_sp, load_metadata

AWS_METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    entityID="urn:amazon:webservices">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:AssertionConsumerService index="1" isDefault="true"
        Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://signin.aws.amazon.com/saml"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


def test_aws_metadata_file_replaces_the_builtin_sp_with_a_notice(tmp_path: Path) -> None:
    (tmp_path / "aws.xml").write_text(AWS_METADATA)
    loaded = load_metadata([tmp_path], builtin=[aws_sp("http://127.0.0.1:8000")])
    assert loaded.problems == []
    assert loaded.sps[AWS_ENTITY_ID].default_acs().location == \
        "https://signin.aws.amazon.com/saml"
    assert loaded.notices == ["aws.xml: `urn:amazon:webservices` replaces the built-in service "
                              "provider (assertions for it now go to "
                              "https://signin.aws.amazon.com/saml)"]


def test_without_a_file_the_builtin_sp_consumes_at_the_federation_page(tmp_path: Path) -> None:
    loaded = load_metadata([tmp_path], builtin=[aws_sp("http://127.0.0.1:8000")])
    assert loaded.sps[AWS_ENTITY_ID].default_acs().location == \
        "http://127.0.0.1:8000/federation/saml"
    assert loaded.notices == []


def test_a_second_file_for_the_same_entity_is_still_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(AWS_METADATA)
    (tmp_path / "b.xml").write_text(AWS_METADATA)
    loaded = load_metadata([tmp_path], builtin=[aws_sp("http://127.0.0.1:8000")])
    assert loaded.problems == ["b.xml: entity `urn:amazon:webservices` is already loaded"]
    assert len(loaded.notices) == 1
