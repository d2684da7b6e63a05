"""Signs of life for long commands: one line per stage on stderr, tqdm bars for loops (``tqdm.auto``).

Stage lines go to stderr, so a command's result on stdout stays clean to pipe (``hyperzoo demo > result.txt``
still shows the stages). Like tqdm's bars (``disable=None``) they show when stderr is a terminal;
``HYPERZOO_PROGRESS=1`` shows them in logs too (``nohup``, CI), ``HYPERZOO_QUIET=1`` never. Errors stay one line
either way. This module imports nothing heavy.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Stages", "show_stages", "stage"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def show_stages() -> bool:
    """Whether stage lines print: on a terminal or with ``HYPERZOO_PROGRESS=1``, never with ``HYPERZOO_QUIET=1``."""
    if _flag("HYPERZOO_QUIET"):
        return False
    if _flag("HYPERZOO_PROGRESS"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def stage(message: str, prefix: str = "hyperzoo") -> None:
    """Prints ``prefix: message`` on stderr at once (when :func:`show_stages`)."""
    if show_stages():
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
