"""LightningCLI YAML configs as plain mappings: read one, set keys in it, reach a trainer callback's arguments.

``hyperzoo zoo train`` and ``hyperzoo stitch fit`` are thin aliases of ``hyperzoo fit``: they read the config as a
plain mapping with these functions, set a few keys (dotted paths, or the ``init_args`` of one of the trainer's
callbacks, which command-line options cannot reach inside a list) and hand the result to the same LightningCLI run
(:func:`hyperzoo.lightning.config_overrides.fit_with`), which checks every key and value. This module imports no
Lightning (a base module: any layer may use it).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from hyperzoo.errors import ConfigError

__all__ = ["callback_args", "read_config", "set_key"]


def read_config(path: str | os.PathLike, what: str = "config") -> dict[str, Any]:
    """A LightningCLI YAML config as a mapping (a deep copy to edit; LightningCLI checks it when it runs).

    Raises:
        ConfigError: no such file, or not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {path} not found")
    try:
        cfg = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{what} {path} is not a mapping of LightningCLI keys (trainer, model, data, ...)")
    return copy.deepcopy(cfg)


def callback_args(cfg: dict[str, Any], class_name: str, where: str) -> dict[str, Any]:
    """The ``init_args`` (created if missing, edited in place) of the trainer callback whose class is ``class_name``.

    Raises:
        ConfigError: no such callback in ``trainer.callbacks``.
    """
    callbacks = (cfg.get("trainer") or {}).get("callbacks") or []
    for cb in callbacks if isinstance(callbacks, list) else [callbacks]:
        if isinstance(cb, dict) and str(cb.get("class_path", "")).rpartition(".")[2] == class_name:
            if not isinstance(cb.get("init_args"), dict):
                cb["init_args"] = {}
            return cb["init_args"]
    raise ConfigError(f"{where} has no {class_name} among trainer.callbacks; add one (see experiments/configs/)")


def set_key(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Sets ``cfg[a][b][c] = value`` for ``dotted = "a.b.c"``, creating mappings on the way.

    Raises:
        ConfigError: a key on the way holds something other than a mapping.
    """
    *path, last = dotted.split(".")
    node = cfg
    for key in path:
        if node.get(key) is None:
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a mapping in the config")
    node[last] = value
