"""Argument types of the ``hyperzoo`` command: checked at the boundary, with a message naming the option.

Use them as argparse ``type=``: ``p.add_argument("--num", type=positive_int)``. A bad value ends the command
with argparse's one-line usage error, e.g. ``hyperzoo smash sample: error: argument --num: must be a positive
integer (1, 2, ...), got -1``. This module imports nothing heavy (no torch), so parsers stay fast to build.

It also holds the names the parsers offer as choices before the registries that define them are imported
(``tests/test_cli_robustness.py`` checks that they equal the registries).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DEEPNETS1M_SPLITS",
    "MERGE_METHODS",
    "MODEL_FAMILIES",
    "existing_dir",
    "existing_file",
    "existing_path",
    "finite_float",
    "float_range",
    "int_at_least",
    "new_file",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "unit_float",
]

# `hyperzoo.nets.deepnets1m.SPLITS`, in its order (the parser lists them without importing torch)
DEEPNETS1M_SPLITS: tuple[str, ...] = ("train", "val", "test", "wide", "deep", "dense", "bnfree", "predefined")
# `hyperzoo.merge.baselines.METHODS` (`hyperzoo merge --method`)
MERGE_METHODS: tuple[str, ...] = ("average", "rebasin", "pleas", "pleas_weight")
# the families of `hyperzoo.nets.MODELS` (`hyperzoo models --family`)
MODEL_FAMILIES: tuple[str, ...] = (
    "cifar_resnet",
    "deepnets1m",
    "gcr",
    "laurel",
    "mixture_growth",
    "torchvision",
    "wide_resnet",
)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1, 2, ...), got {text}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def int_at_least(low: int, why: str = "") -> Callable[[str], int]:
    """An integer >= ``low`` (``why`` is added to the message)."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}{' ' + why if why else ''}, got {text}")
        return value

    parse.__name__ = f"int_at_least_{low}"  # argparse names the type in some messages
    return parse


def finite_float(text: str) -> float:
    """Any finite number (no nan, no inf)."""
    return _float(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive number, got {text}")
    return value


def unit_float(text: str) -> float:
    """A number in [0, 1]."""
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value


def float_range(low: float, high: float) -> Callable[[str], float]:
    """A number in ``[low, high]``."""

    def parse(text: str) -> float:
        value = _float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a number in [{low:g}, {high:g}], got {text}")
        return value

    parse.__name__ = "float_range"
    return parse


def existing_file(text: str) -> str:
    """The path of an existing file (kept as given)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def existing_dir(text: str) -> str:
    """The path of an existing directory (kept as given)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {text}")
    return text


def existing_path(text: str) -> str:
    """An existing file or directory (a dataset root, an archive)."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text}")
    return text


def new_file(text: str) -> str:
    """An output file name: not a directory, and its folder, if it exists, is a folder (created later if missing)."""
    path = Path(text)
    if not text or text.endswith(("/", "\\")) or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text or repr(text)} is a directory; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is a file, not a folder")
            break
    return text
