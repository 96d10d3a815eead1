"""Talking to the person at the terminal through ``/dev/tty``, never stdout: stdout of
``idp credentials`` belongs to the program that started it (``credential_process``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TextIO


class Terminal:
    """The controlling terminal, or ``None`` from :func:`open_terminal` when there is none
    (a cron job, a CI runner, an SDK started without one)."""

    def __init__(self, inp: TextIO, out: TextIO) -> None:
        self.inp, self.out = inp, out

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def pick(self, title: str, options: Sequence[str]) -> str:
        """A numbered menu; the answer is read from the terminal (an empty answer or EOF
        picks nothing and raises ``KeyboardInterrupt``)."""
        self.say(title)
        for i, option in enumerate(options, 1):
            self.say(f"  {i}) {option}")
        while True:
            self.out.write(f"choose 1-{len(options)}: ")
            self.out.flush()
            answer = self.inp.readline()
            if not answer:
                raise KeyboardInterrupt
            answer = answer.strip()
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            if answer in options:
                return answer

    def close(self) -> None:
        for stream in (self.inp, self.out):
            with contextlib.suppress(OSError):
                stream.close()


def open_terminal() -> Terminal | None:
    """``/dev/tty`` opened twice (a text stream cannot both read and write a terminal,
    which is not seekable); ``None`` without a controlling terminal."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        out = os.fdopen(os.dup(fd), "w", encoding="utf-8")
    except OSError:
        os.close(fd)
        return None
    return Terminal(os.fdopen(fd, "r", encoding="utf-8"), out)
