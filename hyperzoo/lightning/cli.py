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

import hyperzoo.data
import hyperzoo.lightning.classifier  # noqa: F401  (LightningModules resolvable by short class name)
from hyperzoo.errors import ConfigError, HyperzooError

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
        if "weights_only" in cfg and cfg.get("weights_only") is None:
            cfg["weights_only"] = True  # --ckpt_path files are read without unpickling code (torch.load weights_only)
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


_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Expected a <class 'NoneType'>",
    "Given value type:",
    "Given value:",
)


def condense_argument_error(message: str) -> str:
    """Turns a multi-line jsonargparse error into one line that keeps what matters (which key, what is wrong)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "invalid command line or configuration"
    parts = [lines[0].rstrip(":")]
    for line in lines[1:]:
        if not any(n in line for n in _NOISE):
            parts.append(line.lstrip("- ").rstrip(":"))
    return ": ".join(parts).replace("unrecognized arguments: fit ", "unrecognized arguments: ")


def _user_error(exc: BaseException) -> HyperzooError | None:
    """The HyperzooError that caused ``exc`` (jsonargparse and Lightning wrap exceptions), if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, HyperzooError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def run_lightning_cli(args: list[str]) -> Any:
    """Runs ``hyperzoo <fit|validate|test> ...`` with ``args`` (everything after ``hyperzoo``).

    Raises:
        ConfigError: an unknown or invalid option or config key (one line, with the key).
        HyperzooError: whatever hyperzoo code raised while building the model or data, unwrapped.
    """
    import sys

    from jsonargparse import ArgumentError
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    subcommand = args[0] if args else "fit"
    try:
        return HyperzooCLI(
            pl.LightningModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            parser_kwargs={"description": "hyperzoo training (LightningCLI).", "exit_on_error": False},
            # None makes LightningCLI read sys.argv itself (and not warn that both were given)
            args=None if args == sys.argv[1:] else args,
        )
    except ArgumentError as e:
        raise ConfigError(
            f"{condense_argument_error(str(e))} (run `hyperzoo {subcommand} --help` for the accepted options)"
        ) from None
    except MisconfigurationException as e:  # Lightning's own "this combination of settings is invalid"
        raise ConfigError(f"{e} (check the trainer settings of your config)") from None
    except Exception as e:
        user = _user_error(e)
        if user is None:
            raise
        raise user from None
