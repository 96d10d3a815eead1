"""``idp exec``: a command with role credentials in its environment, or (``--server``) with a
loopback credential endpoint in the ECS container-credentials format that the SDKs poll
(AWS SDKs and Tools Reference Guide, "Container credential provider":
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` + ``AWS_CONTAINER_AUTHORIZATION_TOKEN``)."""

from __future__ import annotations

import hmac
import http.server
import json
import os
import secrets
import subprocess
import threading
from typing import Any

from idp.client.errors import ClientError
from idp.client.session import Session

CLEARED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
           "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWS_PROFILE",
           "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
           "AWS_ROLE_ARN")


def run(s: Session, role: str, duration: int | None, cmd: list[str], *, server: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    if s.profile.region:
        env.setdefault("AWS_REGION", s.profile.region)
        env.setdefault("AWS_DEFAULT_REGION", s.profile.region)
    creds = s.credentials(role, duration)  # signs in now, not inside the command
    if not server:
        env.update(AWS_ACCESS_KEY_ID=creds.access_key_id,
                   AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
                   AWS_SESSION_TOKEN=creds.session_token,
                   AWS_CREDENTIAL_EXPIRATION=creds.expiration)
        return _call(cmd, env)
    endpoint = CredentialServer(s, role, duration)
    env.update(AWS_CONTAINER_CREDENTIALS_FULL_URI=endpoint.url,
               AWS_CONTAINER_AUTHORIZATION_TOKEN=endpoint.token)
    try:
        return _call(cmd, env)
    finally:
        endpoint.close()


def _call(cmd: list[str], env: dict[str, str]) -> int:
    try:
        return subprocess.call(cmd, env=env)
    except OSError as exc:
        raise ClientError(f"cannot run `{cmd[0]}`: {exc.strerror}", status=127) from None


class CredentialServer:
    """``GET /credentials`` on 127.0.0.1 (a random port), answered only with the random
    ``Authorization`` token (compared in constant time); each answer is the cached
    credentials, renewed silently when near their end."""

    def __init__(self, s: Session, role: str, duration: int | None) -> None:
        self.token = secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer._answer(self, s, role, duration)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/credentials"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, h: http.server.BaseHTTPRequestHandler, s: Session, role: str,
                duration: int | None) -> None:
        given = h.headers.get("Authorization", "")
        if h.path != "/credentials":
            return _send(h, 404, {"Code": "NotFound", "Message": "no such path"})
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _send(h, 403, {"Code": "AccessDenied", "Message": "wrong token"})
        try:
            with self._lock:
                c = s.credentials(role, duration, interactive=False)
        except ClientError as exc:
            return _send(h, 503, {"Code": "CredentialsUnavailable", "Message": exc.message})
        _send(h, 200, {"AccessKeyId": c.access_key_id, "SecretAccessKey": c.secret_access_key,
                       "Token": c.session_token, "Expiration": c.expiration,
                       "RoleArn": role})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _send(h: http.server.BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
