"""The kit IdP these tests use: the demo people, roles and clients, plus python3-saml's SP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.testing.onelogin import kit_sp


@pytest.fixture
def idp_server_config() -> Any:
    return {"saml_sps": [kit_sp()]}
