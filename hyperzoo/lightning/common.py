"""Pieces every hyperzoo LightningModule shares: optimizer and schedule arguments, skipping non-finite steps."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.lightning.schedule import Stepping, build_lr_scheduler, use_stepping

__all__ = [
    "NonFiniteGuard",
    "build_optimizer",
    "check_training_args",
    "describe_callable",
    "optimizer_config",
    "set_optimizer_args",
]

# name -> (lowest, highest, lowest allowed?, highest allowed?) of the training arguments modules share
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0.0, math.inf, False, False),
    "momentum": (0.0, 1.0, True, False),
    "betas": (0.0, 1.0, True, False),
    "weight_decay": (0.0, math.inf, True, False),
    "anchor_lr_scale": (0.0, math.inf, True, False),
    "label_smoothing": (0.0, 1.0, True, False),
    "predparam_wd": (0.0, math.inf, True, False),
    "max_bad_steps": (1.0, math.inf, True, False),
    "num_classes": (1.0, math.inf, True, False),
}


def check_training_args(owner: str, **values: Any) -> None:
    """Checks numeric training arguments (learning rate, momentum, ...) at the boundary, naming the bad one.

    Args:
        owner: where the arguments live, for the message. ``"model"``: they are the LightningModule's own, named
            as a Python call would (``label_smoothing=1.0: must be ...``; ``hyperzoo fit`` writes the option,
            ``--model.init_args.label_smoothing 1.0``, see :func:`hyperzoo.lightning.cli.init_arg_flags`). A
            config path (``"model.init_args.optimizer"``): arguments inside a ``{class_path, init_args}`` value,
            named by their option (``--model.init_args.optimizer.init_args.lr must be ...``).
        **values: the arguments to check; names without a known range, and None values, are skipped; ``widths``
            must hold positive finite numbers.

    Raises:
        ConfigError: the first argument out of its range, with its name and what is allowed.
    """
    for name, value in values.items():
        if value is None:
            continue
        own = owner == "model"
        if name == "widths":
            low = 1
            bad = [v for v in value if not isinstance(v, (int, float)) or not math.isfinite(v) or v < low]
            if bad:
                what = f"{name}={list(value)}: must hold numbers >= {low}"
                raise ConfigError(what if own else f"--{owner}.init_args.{name} must hold numbers >= {low}")
            continue
        if name not in _RANGES:
            continue
        lo, hi, lo_ok, hi_ok = _RANGES[name]
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        ok = ok and (value >= lo if lo_ok else value > lo) and (value <= hi if hi_ok else value < hi)
        if not ok:
            lo_txt = f">= {lo:g}" if lo_ok else f"> {lo:g}"
            rng = lo_txt if math.isinf(hi) else f"{lo_txt} and {'<=' if hi_ok else '<'} {hi:g}"
            raise ConfigError(
                f"{name}={value}: must be {rng}" if own else f"--{owner}.init_args.{name} must be {rng}, got {value}"
            )


def set_optimizer_args(
    module: Any,
    optimizer: Callable[[Iterable[Any]], torch.optim.Optimizer] | None,
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None,
    default_optimizer: Callable[[Iterable[Any]], torch.optim.Optimizer],
    owner: str = "model",
) -> None:
    """Keeps a module's ``optimizer`` and ``lr_scheduler`` callables after checking that they build.

    The arguments are LightningCLI's ``OptimizerCallable`` and ``LRSchedulerCallable``; their hyperparameter entries
    become plain data.

    Call it after ``save_hyperparameters()``. A ``{class_path, init_args}`` dict (a YAML section read without
    LightningCLI, or a checkpoint's hyperparameters) is accepted as well, for optimizer and scheduler classes only.
    The callables become ``module.optimizer_factory`` (``optimizer``, or ``default_optimizer`` when None) and
    ``module.lr_scheduler_factory`` (None: a constant learning rate). A callable given in Python (not through a
    config) is recorded in ``hparams`` as ``{class_path, init_args}`` (or its dotted name), so checkpoints and logged
    hyperparameters stay loadable without unpickling code.

    Raises:
        ConfigError: the optimizer or the schedule cannot be built with its arguments (message names the option).
    """
    optimizer = _from_spec(optimizer, torch.optim.Optimizer, f"--{owner}.init_args.optimizer")
    lr_scheduler = _from_spec(lr_scheduler, _SCHEDULERS, f"--{owner}.init_args.lr_scheduler")
    module.optimizer_factory = optimizer if optimizer is not None else default_optimizer
    module.lr_scheduler_factory = lr_scheduler
    hparams = getattr(module, "hparams", {})
    for name in ("optimizer", "lr_scheduler"):
        if name in hparams and hparams[name] is not None and callable(hparams[name]):
            hparams[name] = describe_callable(hparams[name])
    probe = build_optimizer(module.optimizer_factory, [torch.zeros(1, requires_grad=True)], owner)
    if lr_scheduler is not None:
        try:
            with use_stepping(Stepping(total_steps=1000, steps_per_epoch=10.0)):
                lr_scheduler(probe)
        except (ValueError, TypeError, ConfigError) as e:
            raise ConfigError(f"--{owner}.init_args.lr_scheduler cannot be built: {e}") from None


_SCHEDULERS = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _from_spec(value: Any, base: type | tuple[type, ...], option: str) -> Any:
    """``value``, or the callable a ``{class_path, init_args}`` dict describes (a subclass of ``base`` only)."""
    if not isinstance(value, dict):
        return value
    import importlib

    path = str(value.get("class_path", ""))
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name) if module_name else None
    except ImportError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{option}: class_path {path!r} is not an importable optimizer or scheduler class")
    return functools.partial(cls, **dict(value.get("init_args") or {}))


def build_optimizer(
    factory: Callable[[Iterable[Any]], torch.optim.Optimizer], params: Iterable[Any], owner: str = "model"
) -> torch.optim.Optimizer:
    """``factory(params)``, with an error that names the option when the optimizer refuses its arguments.

    Beyond torch's own checks, ``lr`` must be finite and > 0, ``weight_decay`` finite and >= 0, ``momentum`` and
    each of ``betas`` in [0, 1) (``--model.init_args.optimizer.init_args.lr must be > 0, got 0.0``).
    """
    try:
        opt = factory(params)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--{owner}.init_args.optimizer cannot be built: {e}") from None
    settings = {k: float(v) for k, v in opt.defaults.items() if k in ("lr", "momentum", "weight_decay")}
    betas = opt.defaults.get("betas")
    check_training_args(f"{owner}.init_args.optimizer", **settings)
    for beta in betas if isinstance(betas, (tuple, list)) else []:
        check_training_args(f"{owner}.init_args.optimizer", betas=float(beta))
    return opt


def optimizer_config(module: Any, params: Iterable[Any], optimizer: torch.optim.Optimizer | None = None) -> Any:
    """What ``configure_optimizers`` returns: the module's optimizer and its ``lr_scheduler``.

    The optimizer is built over ``params`` (or ``optimizer`` is taken as it is); the schedule is stepped every
    optimizer step, its epoch lengths converted with ``module.trainer``.
    """
    opt = optimizer if optimizer is not None else build_optimizer(module.optimizer_factory, params)
    factory = module.lr_scheduler_factory
    sched = build_lr_scheduler(factory, opt, module.trainer) if factory is not None else None
    return {"optimizer": opt, "lr_scheduler": sched} if sched is not None else {"optimizer": opt}


def describe_callable(fn: Any) -> Any:
    """A YAML/JSON-friendly record of an optimizer or scheduler callable: ``{class_path, init_args}`` or a name."""

    def path(obj: Any) -> str:
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"

    def plain(value: Any) -> Any:
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return repr(value)

    if isinstance(fn, functools.partial):
        target, args = fn.func, list(fn.args)
        if not isinstance(target, type) and args and isinstance(args[0], type):  # jsonargparse's partial
            target, args = args[0], args[1:]
        out: dict[str, Any] = {"class_path": path(target), "init_args": plain(dict(fn.keywords))}
        if args:
            out["args"] = plain(args)
        return out
    if isinstance(fn, type):
        return {"class_path": path(fn)}
    return path(fn)


class NonFiniteGuard:
    """Mixin for LightningModules: a step whose loss is NaN/inf is skipped and counted; too many in a row abort.

    ``training_step`` returns ``self.guard(loss)``: the loss, or ``None`` (Lightning then skips backward and the
    optimizer step, so the weights stay intact). ``max_bad_steps`` must be a hyperparameter of the module.
    """

    bad_steps: int = 0
    skipped_steps: int = 0

    def guard(self: Any, loss: Tensor) -> Tensor | None:
        if bool(torch.isfinite(loss)):
            self.bad_steps = 0
            return loss
        self.bad_steps += 1
        self.skipped_steps += 1
        self.log("train/skipped_steps", float(self.skipped_steps))
        if self.bad_steps >= self.hparams.max_bad_steps:
            raise HyperzooError(
                f"the loss was not finite for {self.bad_steps} consecutive steps (last at epoch {self.current_epoch}, "
                f"step {self.global_step}); lower the learning rate, add warm-up or clip gradients harder"
            )
        return None
