"""The ``idp`` command's entry point: the client commands (``login``, ``credentials``…, see
:mod:`idp.client.cli`) start without loading the server, whose commands (``serve``, ``demo``,
``keys``…) are :mod:`idp.cli`."""

from __future__ import annotations

import sys

CLIENT_COMMANDS = frozenset({"login", "logout", "configure", "credentials", "exec", "token"})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in CLIENT_COMMANDS:
        from idp.client.cli import main as client_main

        sys.exit(client_main(sys.argv[1:]))
    try:
        from idp.cli import main as server_main
    except ImportError as exc:
        sys.stderr.write(f"idp: the server commands need the server's packages ({exc.name} is "
                         "missing); this installation has the client commands: "
                         f"{', '.join(sorted(CLIENT_COMMANDS))}\n")
        sys.exit(2)
    server_main()
