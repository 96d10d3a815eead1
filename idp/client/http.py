"""HTTP for the client: form POSTs with JSON or AWS Query XML answers (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from idp.client.errors import ClientError

__all__ = ["ClientError", "get_json", "oauth_post", "post_form"]
TIMEOUT = 15.0


def post_form(url: str, fields: Mapping[str, str],
              headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """POST ``application/x-www-form-urlencoded``; the status and body, errors included."""
    body = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(url, body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
        "User-Agent": "idp-client", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - configured
            return int(resp.status), bytes(resp.read(1 << 20))
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read(1 << 20))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"cannot reach {url}: {reason}") from None


def get_json(url: str) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "idp-client"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - configured
            data = json.loads(resp.read(1 << 20))
    except urllib.error.HTTPError as exc:
        raise ClientError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ClientError(f"cannot read {url}: {getattr(exc, 'reason', exc)}") from None
    if not isinstance(data, dict):
        raise ClientError(f"{url}: not a JSON object")
    return data


def oauth_post(url: str, fields: Mapping[str, str],
               headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A token-endpoint style request: the JSON answer, or :class:`ClientError` carrying the
    OAuth ``error`` code (RFC 6749 §5.2)."""
    status, raw = post_form(url, fields, headers)
    try:
        data = json.loads(raw)
    except ValueError:
        raise ClientError(f"{url}: HTTP {status}, not JSON") from None
    if not isinstance(data, dict):
        raise ClientError(f"{url}: HTTP {status}, not a JSON object")
    if status != 200 or "error" in data:
        code = str(data.get("error", "server_error"))
        desc = str(data.get("error_description", ""))
        raise ClientError(f"{code}: {desc}" if desc else code, code)
    return data
