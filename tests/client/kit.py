"""Running the ``idp`` client commands as the SDKs do: a separate process, with its own
``IDP_HOME`` and AWS config file, no controlling terminal (unless a test gives it one)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

IDP = str(Path(sys.executable).parent / "idp")


@dataclass
class ClientEnv:
    root: Path

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "IDP_")) and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        return {**keep, "IDP_HOME": str(self.root / "idp"), "IDP_KEYRING": "off",
                "AWS_CONFIG_FILE": str(self.root / "aws" / "config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.root / "aws" / "credentials"),
                "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(self.root)}

    def run(self, *args: str, timeout: float = 60,
            **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([IDP, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True, stdin=subprocess.DEVNULL,
                              **kw)  # type: ignore[call-overload]

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([IDP, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                stdin=subprocess.DEVNULL)
