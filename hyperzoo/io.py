"""Safe output files: refuse to overwrite without being told, create parent folders, write atomically.

Every file hyperzoo writes goes through :func:`atomic_write` (or :func:`write_text_atomic`): the content is
written to a temporary file in the target's folder and renamed over the target only once it is complete, so a
killed process never leaves a half-written file under the final name. Commands check their outputs first with
:func:`check_output`, which refuses an existing file unless ``--overwrite`` was given and creates missing
parent folders (a file standing where a folder should be is an error naming it).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hyperzoo.errors import ConfigError, DataError

__all__ = [
    "atomic_write",
    "check_finite",
    "check_output",
    "crc32",
    "ensure_parent",
    "write_text_atomic",
]


def ensure_parent(path: str | os.PathLike[str], option: str = "output") -> Path:
    """Creates the parent folders of ``path``.

    Raises:
        ConfigError: a file stands where one of the folders should be.
    """
    path = Path(path)
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_output(
    path: str | os.PathLike[str],
    overwrite: bool = False,
    option: str = "--out",
    flag: str = "--overwrite",
) -> Path:
    """Checks that ``path`` may be written, and creates its parent folders.

    Args:
        path: the output file.
        overwrite: whether an existing file may be replaced.
        option: the command-line option that named ``path`` (for the messages).
        flag: the option that allows overwriting (for the messages).

    Raises:
        ConfigError: ``path`` exists and ``overwrite`` is false, ``path`` is a folder, or a file stands where a
            parent folder should be.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path} already exists; pass {flag} to replace it, or choose another name")
    return ensure_parent(path, option)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on success it is renamed over ``path``, on error removed.

    The temporary file keeps ``path``'s suffix (libraries that infer the format from it still work). Parent
    folders are created. The file gets the usual permissions (``0o666`` minus the umask).

    Example::

        with atomic_write("model.safetensors") as tmp:
            save_file(state, str(tmp))
    """
    path = ensure_parent(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def crc32(*parts: Any) -> int:
    """CRC-32 of the bytes of ``parts`` (numpy arrays, bytes or str) in order; chained, so cheap to combine."""
    value = 0
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        elif isinstance(part, np.ndarray):
            part = np.ascontiguousarray(part)
        value = zlib.crc32(part, value)
    return value


def check_finite(tensors: Mapping[str, Any], where: str, what: str = "weights", hint: str = "") -> None:
    """Raises if a tensor in ``tensors`` holds NaN or infinity, naming the first such tensor.

    Args:
        tensors: name -> tensor (floating-point tensors are checked; others are skipped).
        where: the file or object they belong to (for the message).
        what: what the tensors are (for the message).
        hint: what to do about it.

    Raises:
        DataError: a non-finite value.
    """
    import torch

    bad = [k for k, t in tensors.items() if isinstance(t, torch.Tensor) and t.is_floating_point() and not _finite(t)]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{where}: {what} {bad[0]!r}{more} hold NaN or infinite values{'; ' + hint if hint else ''}")


def _finite(t: Any) -> bool:
    import torch

    return bool(torch.isfinite(t).all()) if t.numel() else True
