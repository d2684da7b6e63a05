"""Training a zoo: ``hyperzoo zoo train``, one ``hyperzoo fit`` (LightningCLI) run per entry of a zoo config.

The zoo's own logic (the config of each entry, the :class:`~hyperzoo.zoo.train.ZooEntryWriter` callback that stores
the trained network) lives in :mod:`hyperzoo.zoo.train`; this module runs the fits. Every entry trains in
``<zoo>/.partial/<name>``: entries already in the zoo are skipped, an entry killed mid-training resumes from its
``last.ckpt`` (``ckpt_path: last``; read with ``torch.load(weights_only=True)``), and the folder is deleted once the
entry is stored.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from hyperzoo.errors import DataError
from hyperzoo.lightning.config_overrides import fit_with
from hyperzoo.zoo.store import entry_path, zoo_dir
from hyperzoo.zoo.train import entry_config, writer_args, zoo_entries

__all__ = ["train_entry", "train_zoo"]


def train_entry(
    config: str | os.PathLike,
    name: str,
    root: str | os.PathLike | None = None,
    data: dict[str, Any] | None = None,
    args: list[str] | None = None,
) -> Path:
    """Trains zoo entry ``name`` of ``config`` with ``hyperzoo fit`` and returns its weights path.

    Args:
        config: the zoo config.
        name: the entry.
        root: zoo directory.
        data: data-module arguments that replace the config's.
        args: further ``hyperzoo fit`` options (e.g. ``["--trainer.max_steps", "2"]``).

    Raises:
        DataError: the entry's ``last.ckpt`` holds more than weights (refused by ``torch.load(weights_only=True)``).
    """
    cfg = entry_config(config, name, root, data)
    zoo = writer_args(cfg, config).get("zoo")
    last = zoo_dir(zoo) / ".partial" / name / "last.ckpt"
    try:
        fit_with(cfg, args)
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{last}: refused to resume from it, torch.load(weights_only=True) rejects it ({exc}); "
            "delete it to train this entry from scratch"
        ) from None
    return entry_path(name, zoo)


def train_zoo(
    config: str | os.PathLike,
    root: str | os.PathLike | None = None,
    only: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    args: list[str] | None = None,
) -> list[Path]:
    """Trains every entry of ``config`` that is not in the zoo yet (or only those named in ``only``).

    Args:
        config: the zoo config.
        root: zoo directory (None: the config's, else ``$HYPERZOO_ZOO`` or ``./zoo``).
        only: train only these entries.
        overrides: data-module arguments that replace the config's (e.g. ``{"root": ...}``).
        args: further ``hyperzoo fit`` options for every entry.

    Returns:
        The weights paths of the entries trained by this call.
    """
    names, configured = zoo_entries(config)
    zoo = root if root is not None else configured
    paths = []
    for name in names:
        if only and name not in only:
            continue
        path = entry_path(name, zoo)
        if path.is_file():
            print(f"zoo: {name} already trained ({path}), skipped")
            continue
        print(f"zoo: training {name} ...", flush=True)
        paths.append(train_entry(config, name, zoo, overrides, args))
    return paths
