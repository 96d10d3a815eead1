"""The terminal side of the IdP: ``idp login``, ``configure``, ``credentials``, ``exec`` and
``token`` (docs/cli.md).

Nothing here imports the server (Flask, lxml, Redis, pydantic…): the client needs the Python
standard library only, plus ``keyring`` when installed (the refresh token goes to the OS
keyring, else to a 0600 file).  ``idp credentials`` is started by every AWS SDK client as a
``credential_process``, so its start-up is kept to what a cached credential needs.
"""
