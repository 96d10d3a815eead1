"""The shortcuts on the path of a signed response give what the long way gives: the decoding
of the redirect signature and the audit record's time."""

from __future__ import annotations

import base64
import os
import random
import re
import time
from urllib.parse import quote_plus, unquote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idp.audit import Auditor, MemorySink, RequestInfo
from idp.saml.crypto import RSA_SHA256
from idp.saml.errors import SamlSignatureError
from idp.saml.messages import Binding, _unquote, _unquote_b64, sign_redirect, verify_redirect
from tests.saml.spapps import make_cert


def test_base64_unquoting_is_unquote_plus() -> None:
    rng = random.Random(7)
    odd = ["%", "+", "%2", "%252B", "%%2B", "%ZZ", "%e2%82%ac", "%2b", "%2f", "%3d", " "]
    for _ in range(5000):
        value = quote_plus(base64.b64encode(os.urandom(rng.randint(0, 300))).decode())
        if rng.random() < 0.3:
            value = value.lower()
        if rng.random() < 0.3:
            at = rng.randint(0, len(value))
            value = value[:at] + rng.choice(odd) + value[at:]
        assert _unquote_b64(value) == unquote_plus(value), value


def test_name_and_relay_state_unquoting_is_unquote_plus() -> None:
    """The plain-ASCII shortcut and the octet-wise decoding of names and RelayState give
    what ``unquote_plus`` gives for an ASCII query (escapes decoded as UTF-8, bad ones
    replaced); raw non-ASCII octets (latin-1 text) are read as UTF-8, as werkzeug reads them."""
    rng = random.Random(11)
    pieces = ["a", "Relay", "State", "%", "+", "%2", "%41", "%e2%82%ac", "%C3", "%c3%a9", "%ZZ",
              "%FF", "=", " ", "~", "%00"]
    for _ in range(5000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert _unquote(value) == unquote_plus(value), value
    assert _unquote("caf\xc3\xa9") == "café"


@pytest.fixture(scope="module")
def sp_material() -> tuple[rsa.RSAPrivateKey, str]:
    """An SP's RSA key and its self-signed certificate (PEM)."""
    key_pem, cert_pem = make_cert("sp")
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key, cert_pem


def test_redirect_signature_with_other_encodings_of_the_same_values(
        sp_material: tuple[rsa.RSAPrivateKey, str]) -> None:
    """SAML Bindings §3.4.4.1: the signature is over the parameters as encoded; SigAlg and
    Signature written with lower-case escapes still decode to the same values."""
    sp_key, cert = sp_material
    query = sign_redirect([("SAMLRequest", "abc+/="), ("RelayState", "r")], sp_key)
    assert verify_redirect(Binding.query(query), "SAMLRequest", (cert,))
    head, _, signature = query.partition("&Signature=")
    lowered = head + "&Signature=" + re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(),
                                            signature)
    assert verify_redirect(Binding.query(lowered), "SAMLRequest", (cert,))
    # the signed text is the query as sent: re-encoding SigAlg breaks the signature
    other_alg = head.replace(quote_plus(RSA_SHA256), quote_plus(RSA_SHA256).lower())
    with pytest.raises(SamlSignatureError):
        verify_redirect(Binding.query(other_alg + "&Signature=" + signature), "SAMLRequest",
                        (cert,))
    with pytest.raises(SamlSignatureError):
        verify_redirect(Binding.query(head + "&Signature=" + signature.replace("%2B", "%2F", 1)
                                      if "%2B" in signature else head + "&Signature=AAAA"),
                        "SAMLRequest", (cert,))


def test_audit_event_time_is_the_utc_second() -> None:
    auditor = Auditor(MemorySink())
    before = int(time.time())
    record = auditor.emit("X", RequestInfo())
    after = int(time.time())
    allowed = {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
               for t in range(before, after + 1)}
    assert record["eventTime"] in allowed
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["eventTime"])
