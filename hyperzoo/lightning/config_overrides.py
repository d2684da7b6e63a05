"""Run a LightningCLI config with overrides from Python: what ``hyperzoo zoo train`` and ``hyperzoo stitch fit`` do.

Those commands are thin aliases of ``hyperzoo fit``: they read the config as a plain mapping and set a few keys
(:mod:`hyperzoo.config_yaml`), then hand the result to :func:`fit_with`, the same LightningCLI run, which checks
every key and value.
"""

from __future__ import annotations

import warnings
from typing import Any

import yaml

__all__ = ["fit_with"]


def fit_with(cfg: dict[str, Any], args: list[str] | None = None) -> Any:
    """Runs ``hyperzoo fit`` on the config mapping ``cfg`` (passed as YAML text), with further options ``args``."""
    from hyperzoo.lightning.cli import run_lightning_cli

    with warnings.catch_warnings():  # the args are ours, not a second command line next to sys.argv
        warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within")
        return run_lightning_cli(["fit", "--config", yaml.safe_dump(cfg, sort_keys=False), *(args or [])])
