"""Writing one profile into the AWS shared config file (AWS SDKs and Tools Reference Guide,
"The shared config and credentials files"): the other sections and their comments stay as
they are, and the file is replaced atomically."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")


def credential_process_command(profile: str) -> str:
    """``<idp> credentials --profile NAME``, with the ``idp`` of this installation (or this
    Python with ``-m idp.client``), quoted as botocore splits it (POSIX shell words)."""
    script = Path(sys.executable).parent / "idp"
    argv = [str(script)] if script.is_file() else [sys.executable, "-m", "idp.client"]
    return shlex.join([*argv, "credentials", "--profile", profile])


def write_profile(explicit: str | None, profile: str, values: Mapping[str, str]) -> Path:
    """Replace (or add) the ``[profile NAME]`` section (``[default]`` for ``default``)."""
    path = config_path(explicit)
    header = "[default]" if profile == "default" else f"[profile {profile}]"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    out: list[str] = []
    skipping = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped == header
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if out:
        out.append("")
    out.append(header)
    out.extend(f"{k} = {v}" for k, v in values.items())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
