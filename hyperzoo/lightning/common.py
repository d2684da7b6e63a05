"""Pieces every hyperzoo LightningModule shares: optimizers, per-step schedules, and skipping non-finite steps."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.lightning.schedule import lr_factor

__all__ = ["NonFiniteGuard", "check_training_args", "make_optimizer", "step_schedule"]

OPTIMIZERS = ("sgd", "adam", "adamw")

# name -> (lowest, highest, lowest allowed?, highest allowed?) of the training arguments modules share
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0.0, math.inf, False, False),
    "momentum": (0.0, 1.0, True, False),
    "weight_decay": (0.0, math.inf, True, False),
    "gamma": (0.0, math.inf, False, False),
    "warmup_epochs": (0.0, math.inf, True, False),
    "cooldown_epochs": (0.0, math.inf, True, False),
    "restart_epochs": (0.0, math.inf, False, False),
    "label_smoothing": (0.0, 1.0, True, False),
    "predparam_wd": (0.0, math.inf, True, False),
    "max_bad_steps": (1.0, math.inf, True, False),
    "num_classes": (1.0, math.inf, True, False),
}


def check_training_args(owner: str, **values: Any) -> None:
    """Checks numeric training arguments (learning rate, momentum, ...) at the boundary, naming the bad one.

    Args:
        owner: where the arguments live, for the message (``"model"``: ``--model.init_args.lr``).
        **values: the arguments to check; names without a known range, and None values, are skipped; list values
            (``milestones``, ``widths``) must hold finite non-negative numbers (widths: positive).

    Raises:
        ConfigError: the first argument out of its range, with its option name and what is allowed.
    """
    for name, value in values.items():
        if value is None:
            continue
        option = f"--{owner}.init_args.{name}"
        if name in ("milestones", "widths"):
            low = 1 if name == "widths" else 0
            bad = [v for v in value if not isinstance(v, (int, float)) or not math.isfinite(v) or v < low]
            if bad:
                raise ConfigError(f"{option} must hold numbers >= {low}, got {list(value)}")
            continue
        if name not in _RANGES:
            continue
        lo, hi, lo_ok, hi_ok = _RANGES[name]
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        ok = ok and (value >= lo if lo_ok else value > lo) and (value <= hi if hi_ok else value < hi)
        if not ok:
            lo_txt = f">= {lo:g}" if lo_ok else f"> {lo:g}"
            rng = lo_txt if math.isinf(hi) else f"{lo_txt} and {'<=' if hi_ok else '<'} {hi:g}"
            raise ConfigError(f"{option} must be {rng}, got {value}")


def make_optimizer(
    groups: Iterable[Any], name: str, lr: float, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0
) -> torch.optim.Optimizer:
    """``sgd`` (momentum, optionally Nesterov, L2 decay), ``adam`` (L2 decay) or ``adamw`` (decoupled decay).

    ``momentum`` is SGD's momentum and Adam's beta1.
    """
    check_training_args("model", lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    raise HyperzooError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def step_schedule(
    optimizer: torch.optim.Optimizer,
    trainer: pl.Trainer,
    schedule: str,
    milestones: Iterable[float] | None = None,
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
    cooldown_epochs: float = 0.0,
    restart_epochs: float = 1.0,
    restart_mult: int = 1,
) -> dict[str, Any]:
    """A per-step :func:`lr_factor` schedule as Lightning's ``lr_scheduler`` dict.

    Milestones, warm-up, cooldown and restart periods are given in epochs (fractions allowed) and converted with
    the trainer's ``estimated_stepping_batches``, so ``max_steps`` runs and ``max_epochs`` runs both work.
    """
    total = int(trainer.estimated_stepping_batches)
    per_epoch = float(trainer.num_training_batches) / max(1, trainer.accumulate_grad_batches)
    if not math.isfinite(per_epoch) or per_epoch <= 0:  # an iterable without a length: count epochs in steps
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
        per_epoch = total / epochs
    steps = [int(round(m * per_epoch)) for m in (milestones or [])]
    warmup = int(round(warmup_epochs * per_epoch))
    cooldown = int(round(cooldown_epochs * per_epoch))
    restart = max(1, int(round(restart_epochs * per_epoch)))

    def factor(step: int) -> float:
        return lr_factor(step, total, schedule, warmup, steps, gamma, 0.0, cooldown, restart, restart_mult)

    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"scheduler": sched, "interval": "step"}


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
