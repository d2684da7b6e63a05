"""LightningCLI for every hyperzoo LightningModule: ``hyperzoo fit|validate|test --config FILE.yaml``.

Models and data modules are chosen by class in the YAML (``model: {class_path: ImageClassifier, init_args:
{...}}``); the data module's ``num_classes`` is linked into the model (a different explicit model value is an
error, not silently replaced). The configs under ``experiments/configs/`` set checkpointing
(:class:`~hyperzoo.lightning.resume.ResumableCheckpoint`: ``last.ckpt`` every few hundred steps, at every epoch end
and on Ctrl-C), CSV and TensorBoard logs and a progress bar. With ``ckpt_path: last`` the same command resumes a
killed run from ``<default_root_dir>/checkpoints/last.ckpt`` (mid-epoch, in the same batch order), starts afresh
when there is none, and never resumes in a ``fast_dev_run``.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import hyperzoo.data
import hyperzoo.lightning.classifier  # noqa: F401  (LightningModules resolvable by short class name)
from hyperzoo.cli_flags import flag_message
from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.lightning.resume import LAST, ResumableCheckpoint, TrainingInterrupted, find_resumable

__all__ = ["HyperzooCLI", "init_arg_flags", "run_lightning_cli"]

SUBCOMMANDS = ("fit", "validate", "test")


class HyperzooCLI(LightningCLI):
    """LightningCLI with hyperzoo's links between the data module and the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")

    def instantiate_classes(self) -> None:
        """Instantiates as LightningCLI does; a model ``num_classes`` the data cannot give is an error."""
        cfg = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        requested = _explicit_num_classes(cfg.get("model"))
        super().instantiate_classes()
        model_nc = getattr(getattr(self.model, "hparams", None), "num_classes", None)
        if requested is not None and model_nc is not None and requested != model_nc:
            raise ConfigError(
                f"--model.init_args.num_classes {requested} cannot apply: the number of classes comes from the data "
                f"({type(self.datamodule).__name__} has {model_nc}); drop the option, or train on data with "
                f"{requested} classes"
            )

    def before_fit(self) -> None:
        """Resolves ``ckpt_path: last`` to the run's ``last.ckpt`` (None when there is none, or in a debug run)."""
        cfg = self.config_init[self.subcommand]
        if cfg.get("ckpt_path") != "last":
            return
        trainer: Any = self.trainer
        if trainer.fast_dev_run:  # a debug run neither resumes a real run nor writes where one resumes from
            cfg["ckpt_path"] = None
            return
        found = _last_checkpoints(self.trainer)
        if found:
            cfg["ckpt_path"] = str(max(found, key=lambda p: p.stat().st_mtime))
            # resuming into a folder with checkpoints is the point here, not a mistake to warn about
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        elif any(isinstance(cb, (ResumableCheckpoint, ModelCheckpoint)) for cb in trainer.callbacks):
            cfg["ckpt_path"] = None  # a fresh run: nothing to resume yet, nothing to warn about

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


def _explicit_num_classes(model_cfg: Any) -> int | None:
    """The model's ``num_classes`` when the config sets it to something other than the class default."""
    init_args = getattr(model_cfg, "init_args", None)
    value = getattr(init_args, "num_classes", None) if init_args is not None else None
    if value is None:
        return None
    try:
        cls = pl.LightningModule if not model_cfg.class_path else _import(model_cfg.class_path)
        default = inspect.signature(cls.__init__).parameters["num_classes"].default
    except (KeyError, ImportError, AttributeError, ValueError):
        return None
    return None if value == default else int(value)


def _import(path: str) -> Any:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _last_checkpoints(trainer: pl.Trainer) -> list[Path]:
    """Existing ``last.ckpt`` files of the trainer's checkpoint callbacks."""
    found: list[Path] = []
    for cb in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(cb, ResumableCheckpoint):
            path = find_resumable(cb.dirpath or Path(trainer.default_root_dir) / "checkpoints")
            if path is not None:
                found.append(path)
        elif isinstance(cb, ModelCheckpoint) and cb.dirpath and (Path(cb.dirpath) / LAST).is_file():
            found.append(Path(cb.dirpath) / LAST)
    return found


class _DropLines(logging.Filter):
    """Drops log records that start with one of ``prefixes`` (Lightning's advertising tips)."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_lightning() -> None:
    """Filters messages a hyperzoo user cannot act on, each by its exact text (other warnings still show).

    - Lightning's "💡 Tip: ... litlogger / litmodels" advertising lines;
    - torch's ``LeafSpec`` deprecation, raised inside Lightning's own pytree helper (Lightning's to fix);
    - Lightning's ``.fit(ckpt_path="last") ... no last checkpoint available`` on fresh runs (hyperzoo resolves
      ``last`` itself; this only remains for configs without a checkpoint callback);
    - ``ModelCheckpoint(monitor=...) could not find the monitored key`` when no validation ran yet (short runs,
      ``max_steps`` before the first epoch end): the best checkpoint is kept once validation runs.
    """
    # the tips come through rank_zero_info, whose records are created by these loggers (a logger's own filters
    # see every record it creates, whichever handlers then print it)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in log.filters):
            log.addFilter(_DropLines("💡 Tip:"))
    leaf_spec = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
    warnings.filterwarnings("ignore", message=leaf_spec, category=FutureWarning)
    warnings.filterwarnings("ignore", message=r'\.fit\(ckpt_path="last"\) is set, but there is no last checkpoint')
    # only while no metric of the monitored key's group (`val/...`) exists, i.e. validation has not run yet
    warnings.filterwarnings(
        "ignore",
        message=r"`?ModelCheckpoint\(monitor='(?P<group>[^'/]+)/[^']*'\)`? could not find the monitored key in the "
        r"returned metrics: \[(?!.*'(?P=group)/)",
    )


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


def init_arg_flags(exc: BaseException) -> dict[str, str]:
    """``{argument: LightningCLI option}`` of the data module or model whose code raised ``exc``.

    Library code names the argument it refuses as a Python call would (``batch_size=0: must be at least 1``);
    under ``hyperzoo fit`` that argument is the option ``--data.init_args.batch_size`` (or ``--model.init_args.X``).
    The owner is the innermost data module or LightningModule among the frames ``exc`` passed through (its
    ``__init__``, ``prepare_data``, ``setup``, ...); its arguments are those of the ``__init__`` of its class and
    their bases. Empty when neither raised it.
    """
    owner: tuple[str, object] | None = None
    tb = exc.__traceback__
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, pl.LightningDataModule):
            owner = ("data", obj)
        elif isinstance(obj, pl.LightningModule):
            owner = ("model", obj)
        tb = tb.tb_next
    if owner is None:
        return {}
    key, obj = owner
    names: set[str] = set()
    for cls in type(obj).__mro__:
        if cls in (pl.LightningDataModule, pl.LightningModule) or "__init__" not in vars(cls):
            continue
        try:
            params = inspect.signature(vars(cls)["__init__"]).parameters.values()
        except (TypeError, ValueError):
            continue
        names |= {p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return {name: f"--{key}.init_args.{name}" for name in names}


def _with_flags(error: HyperzooError) -> HyperzooError:
    """``error`` with the arguments its message names written as the LightningCLI options that set them."""
    message = str(error)
    translated = flag_message(message, init_arg_flags(error))
    if translated == message:
        return error
    try:
        return type(error)(translated).with_traceback(error.__traceback__)
    except TypeError:  # an error class that takes other arguments: keep it as it is
        return error


def run_lightning_cli(args: list[str]) -> Any:
    """Runs ``hyperzoo <fit|validate|test> ...`` with ``args`` (everything after ``hyperzoo``).

    Raises:
        ConfigError: an unknown or invalid option or config key (one line, with the key).
        HyperzooError: whatever hyperzoo code raised while building the model or data, unwrapped; the data
            module's or model's arguments it names are written as options (``--data.init_args.batch_size 0``).
    """
    import sys

    from jsonargparse import ArgumentError
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    subcommand = args[0] if args else "fit"
    quiet_lightning()
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
    except TrainingInterrupted as e:  # Ctrl-C, after last.ckpt was written
        print(f"hyperzoo: {e}", file=sys.stderr)
        raise KeyboardInterrupt from None
    except MisconfigurationException as e:  # Lightning's own "this combination of settings is invalid"
        raise ConfigError(f"{e} (check the trainer settings of your config)") from None
    except Exception as e:
        user = _user_error(e)
        if user is None:
            raise
        raise _with_flags(user) from None
