"""``hyperzoo stitch fit``: one ``hyperzoo fit`` (LightningCLI) run of a stitch config, with the command's overrides.

The stitching logic (the config with its overrides, the :class:`~hyperzoo.stitch.run.StitchRun` callback that
initialises the stitches and evaluates every configuration) lives in :mod:`hyperzoo.stitch.run`; this module runs
the fit and returns the evaluated configurations.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hyperzoo.lightning.config_overrides import fit_with
from hyperzoo.stitch.run import fit_config

__all__ = ["run_fit"]


def run_fit(
    config: str | os.PathLike,
    out: str | None = None,
    init: str | None = None,
    epochs: float | None = None,
    anchor_lr_scale: float | None = None,
    overwrite: bool = False,
    args: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The ``hyperzoo stitch fit`` command: ``hyperzoo fit --config config`` with the options as overrides.

    Args:
        config: a stitch config (LightningCLI, with a :class:`~hyperzoo.stitch.run.StitchRun` callback).
        out: output folder (sets ``trainer.default_root_dir`` and the callback's ``out``).
        init: ``ls`` or ``random``, overrides the callback's.
        epochs: overrides ``trainer.max_epochs`` (0: evaluate the initialised stitches).
        anchor_lr_scale: overrides the model's (0 freezes the anchors).
        overwrite: replace the files of an earlier run in the output folder (else refused before any work).
        args: further ``hyperzoo fit`` options.

    Returns:
        The evaluated configurations (the rows of ``configs.json``).

    Raises:
        ConfigError: see :func:`~hyperzoo.stitch.run.fit_config`; a key or value LightningCLI refuses.
    """
    cfg, out_dir = fit_config(config, out, init, epochs, anchor_lr_scale, overwrite)
    fit_with(cfg, args)
    return list(json.loads((out_dir / "configs.json").read_text())["configs"])
