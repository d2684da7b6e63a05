"""LightningCLI for every hyperzoo LightningModule: ``hyperzoo fit|validate|test --config FILE.yaml``.

Models and data modules are chosen by class in the YAML (``model: {class_path: ImageClassifier, init_args:
{...}}``); the data module's ``num_classes`` is linked into the model. The configs under ``experiments/configs/``
set checkpointing (``last.ckpt`` every few hundred steps, so a killed run resumes with ``--ckpt_path last``),
CSV and TensorBoard logs and a progress bar.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import hyperzoo.data  # noqa: F401  (data modules resolvable by short class name)
import hyperzoo.lightning.classifier  # noqa: F401  (LightningModules resolvable by short class name)

__all__ = ["HyperzooCLI", "run_lightning_cli"]

SUBCOMMANDS = ("fit", "validate", "test")


class HyperzooCLI(LightningCLI):
    """LightningCLI with hyperzoo's links between the data module and the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Replaces ``{root}`` in logger and callback arguments by ``trainer.default_root_dir``.

        One config then serves many runs: ``--trainer.default_root_dir runs/x`` moves the logs and checkpoints
        of that run, and ``--ckpt_path last`` finds its ``last.ckpt`` again after a kill.
        """
        cfg = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        trainer = cfg.get("trainer")
        root = str(trainer.get("default_root_dir") or "runs/default")
        for key in ("logger", "callbacks"):
            items = trainer.get(key)
            for item in items if isinstance(items, list) else [items]:
                init_args = getattr(item, "init_args", None)
                if init_args is None:
                    continue
                for name, value in vars(init_args).items():
                    if isinstance(value, str) and "{root}" in value:
                        setattr(init_args, name, value.replace("{root}", root))

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        # `predict` is left to hyperzoo's own `hyperzoo predict` (GHN parameter prediction)
        return {k: v for k, v in LightningCLI.subcommands().items() if k in SUBCOMMANDS}


def run_lightning_cli(args: list[str]) -> Any:
    """Runs ``hyperzoo <fit|validate|test> ...`` with ``args`` (everything after ``hyperzoo``)."""
    import sys

    return HyperzooCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        parser_kwargs={"description": "hyperzoo training (LightningCLI)."},
        # None makes LightningCLI read sys.argv itself (and not warn that both were given)
        args=None if args == sys.argv[1:] else args,
    )
