"""pytest plugin of the test kit (registered as a ``pytest11`` entry point).

``idp_server`` is a started :class:`~idp.testing.IdpServer`, reset before each test: recorded
requests and scripted logins of one test never leak into the next.  Servers are started once
per configuration per test session (a start costs a few hundred milliseconds) and stopped at
its end.  Override the fixture ``idp_server_config`` (in a ``conftest.py``, any scope) to
configure it: it returns a :class:`~idp.testing.KitConfig` or a mapping of its fields
(``None``: the demo people, roles and clients).  Nothing is imported from the IdP until a test
asks for the fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from idp.testing.server import IdpServer


class _Servers:
    """The session's kit IdPs, one per distinct configuration."""

    def __init__(self) -> None:
        self.by_config: dict[str, IdpServer] = {}

    def get(self, config: Any) -> IdpServer:
        from idp.testing.config import kit_config
        from idp.testing.server import IdpServer

        kit = kit_config(config)
        ident = json.dumps(kit.model_dump(mode="json"), sort_keys=True)
        server = self.by_config.get(ident)
        if server is None:
            server = self.by_config[ident] = IdpServer(kit).start()
        return server

    def close(self) -> None:
        for server in self.by_config.values():
            server.stop()
        self.by_config.clear()


@pytest.fixture
def idp_server_config() -> Any:
    """The kit IdP's configuration (``None``: the demo fixtures)."""
    return None


@pytest.fixture(scope="session")
def idp_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


@pytest.fixture
def idp_server(idp_servers: _Servers, idp_server_config: Any) -> IdpServer:
    """A started kit IdP for ``idp_server_config``, reset for this test."""
    server = idp_servers.get(idp_server_config)
    server.reset()
    return server
