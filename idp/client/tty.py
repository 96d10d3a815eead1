"""Talking to the person at the terminal through ``/dev/tty``, never stdout: stdout of
``idp credentials`` belongs to the program that started it (``credential_process``)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence


class Terminal:
    """The controlling terminal, or ``None`` from :func:`open_terminal` when there is none
    (a cron job, a CI runner, an SDK started without one)."""

    def __init__(self, stream: io.TextIOWrapper) -> None:
        self.stream = stream

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def pick(self, title: str, options: Sequence[str]) -> str:
        """A numbered menu; the answer is read from the terminal (an empty answer or EOF
        picks nothing and raises ``KeyboardInterrupt``)."""
        self.say(title)
        for i, option in enumerate(options, 1):
            self.say(f"  {i}) {option}")
        while True:
            self.stream.write(f"choose 1-{len(options)}: ")
            self.stream.flush()
            answer = self.stream.readline()
            if not answer:
                raise KeyboardInterrupt
            answer = answer.strip()
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            if answer in options:
                return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()


def open_terminal() -> Terminal | None:
    try:
        return Terminal(open("/dev/tty", "r+", encoding="utf-8"))  # noqa: SIM115
    except OSError:
        return None
