"""Signs of life for long commands: one line per stage on stderr, tqdm bars for loops (``tqdm.auto``).

Stage lines go to stderr, so a command's result on stdout stays clean to pipe (``hyperzoo demo > result.txt``
still shows the stages). ``HYPERZOO_QUIET=1`` silences them. This module imports nothing heavy.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Stages", "quiet", "stage"]


def quiet() -> bool:
    """Whether stage lines are off (``HYPERZOO_QUIET`` set to anything but ``""``/``0``)."""
    return os.environ.get("HYPERZOO_QUIET", "") not in ("", "0")


def stage(message: str, prefix: str = "hyperzoo") -> None:
    """Prints ``prefix: message`` on stderr at once (unless :func:`quiet`)."""
    if not quiet():
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)


class Stages:
    """Stage lines with the time since the command started: ``hyperzoo demo: loading test images (at 3.1 s)``.

    Args:
        prefix: what prints before the colon (the command's name).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.t0
        stage(f"{message}{f' (at {elapsed:.1f} s)' if elapsed >= 1 else ''}", prefix=self.prefix)
