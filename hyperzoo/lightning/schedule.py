"""Learning-rate schedules given in epochs, built from ``torch.optim.lr_scheduler`` and stepped per optimizer step.

Every hyperzoo LightningModule takes ``lr_scheduler: LRSchedulerCallable | None`` (LightningCLI's dependency
injection: the YAML names a class and its arguments, the module calls it with its optimizer) and steps the
scheduler after every optimizer step. Any torch scheduler works there, its lengths counted in optimizer steps:

.. code-block:: yaml

    lr_scheduler:
      class_path: torch.optim.lr_scheduler.CosineAnnealingLR
      init_args: {T_max: 1000}

The classes below take their lengths in epochs (fractions allowed) instead and convert them with the trainer's
``estimated_stepping_batches`` and batches per epoch (:class:`Stepping`), so ``max_epochs`` and ``max_steps`` runs
both work. Each is a :class:`~torch.optim.lr_scheduler.SequentialLR` of torch schedulers (linear warm-up from
``1 / warmup_steps`` to 1, then the schedule proper):

- :class:`MultiStepEpochsLR`: times ``gamma`` at each milestone epoch (GHN-2: x0.1 at epochs 200 and 250);
- :class:`WarmupCosineLR`: half cosine from the base rate to 0 over the rest of the run (GHN-3, ImageNet recipes);
- :class:`WarmupConstantLR`: constant after the warm-up;
- :class:`ConstantCooldownLR`: constant, then linear to 0 over the last ``cooldown_epochs``; the rate before the
  cooldown does not depend on the run's length, so a resumed run may extend ``max_steps`` until its cooldown began;
- :class:`WarmRestartsLR`: cosine cycles of ``restart_epochs``, each ``restart_mult`` times longer than the last
  (SGDR, ``CosineAnnealingWarmRestarts``); the run's length plays no part.

Inside a module's ``configure_optimizers`` the trainer's stepping is known (:func:`build_lr_scheduler` provides
it); elsewhere pass ``steps_per_epoch`` and ``total_steps`` explicitly.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    SequentialLR,
)

from hyperzoo.errors import ConfigError

__all__ = [
    "ConstantCooldownLR",
    "EpochSchedule",
    "MultiStepEpochsLR",
    "Stepping",
    "WarmRestartsLR",
    "WarmupConstantLR",
    "WarmupCosineLR",
    "build_lr_scheduler",
    "use_stepping",
]


@dataclass(frozen=True)
class Stepping:
    """Optimizer steps of a run: all of them, and how many make one epoch (a float: the last batch may be short)."""

    total_steps: int
    steps_per_epoch: float

    def steps(self, epochs: float) -> int:
        """``epochs`` in optimizer steps (rounded to the nearest step)."""
        return int(round(epochs * self.steps_per_epoch))

    @classmethod
    def from_trainer(cls, trainer: Any) -> Stepping:
        """The stepping of a Lightning ``Trainer`` (``estimated_stepping_batches``, batches per epoch).

        A training set without a length counts an epoch as ``total / max_epochs`` steps (one epoch when the run is
        bounded by ``max_steps`` only).
        """
        total = int(trainer.estimated_stepping_batches)
        per_epoch = float(trainer.num_training_batches) / max(1, trainer.accumulate_grad_batches)
        if not math.isfinite(per_epoch) or per_epoch <= 0:
            epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
            per_epoch = total / epochs
        return cls(total, per_epoch)


_STEPPING: ContextVar[Stepping | None] = ContextVar("hyperzoo_stepping", default=None)


@contextlib.contextmanager
def use_stepping(stepping: Stepping) -> Iterator[Stepping]:
    """Makes ``stepping`` the default of the epoch schedules built inside the ``with`` block."""
    token = _STEPPING.set(stepping)
    try:
        yield stepping
    finally:
        _STEPPING.reset(token)


def build_lr_scheduler(
    factory: Callable[[torch.optim.Optimizer], Any] | None, optimizer: torch.optim.Optimizer, trainer: Any
) -> dict[str, Any] | None:
    """``factory(optimizer)`` as Lightning's ``lr_scheduler`` entry, stepped every optimizer step (None: no schedule).

    The epoch schedules of this module built by ``factory`` take their steps per epoch from ``trainer``.
    """
    if factory is None:
        return None
    with use_stepping(Stepping.from_trainer(trainer)):
        scheduler = factory(optimizer)
    return {"scheduler": scheduler, "interval": "step"}


def _linear(optimizer: torch.optim.Optimizer, start: float, end: float, steps: int) -> LRScheduler:
    """Factor ``start`` at the phase's first step, linearly to ``end`` at step ``steps`` (and ``end`` after it)."""
    if start <= 0 or steps < 1:
        return ConstantLR(optimizer, factor=max(0.0, start), total_iters=2**62)
    return LinearLR(optimizer, start_factor=start, end_factor=end, total_iters=steps)


class EpochSchedule(SequentialLR):
    """A :class:`~torch.optim.lr_scheduler.SequentialLR` of torch schedulers whose lengths come from epochs.

    Subclasses list their phases (warm-up first); this class resolves the :class:`Stepping` and, on resume, keeps
    the phase boundaries computed for the current run (its ``max_steps`` may have changed) while restoring the
    position and the learning rates of the checkpoint.

    Args:
        optimizer: the wrapped optimizer.
        warmup_epochs: linear warm-up from ``1 / warmup_steps`` to 1 over the first steps (0: none).
        steps_per_epoch: optimizer steps per epoch; None takes the trainer's (inside ``configure_optimizers``).
        total_steps: optimizer steps of the run; None takes the trainer's.
    """

    _STRUCTURE = ("start_factor", "end_factor", "total_iters", "factor", "T_max", "eta_min", "milestones", "gamma",
                  "T_0", "T_mult")  # fmt: skip
    _OWN = ("stepping", "warmup_steps", "settings")
    settings: dict[str, Any]  # a subclass's own arguments, kept as given (epochs), not part of the state

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_epochs: float = 0.0,
        steps_per_epoch: float | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.stepping = self._resolve(steps_per_epoch, total_steps)
        _check(type(self).__name__, warmup_epochs=warmup_epochs)
        self.warmup_steps = self.stepping.steps(warmup_epochs)
        if 0 < self.stepping.total_steps <= self.warmup_steps:  # a warning: smoke runs (fast_dev_run) are short
            warnings.warn(
                f"{type(self).__name__}: the warm-up ({warmup_epochs} epochs = {self.warmup_steps} steps at "
                f"{self.stepping.steps_per_epoch:g} steps per epoch) is not shorter than the run "
                f"({self.stepping.total_steps} steps), so the rate would never reach its base value; shorten "
                "warmup_epochs or lengthen the run",
                stacklevel=2,
            )
        phases: list[tuple[LRScheduler, int]] = []
        if self.warmup_steps > 0:
            w = self.warmup_steps
            phases.append((_linear(optimizer, 1 / w, 1.0, w - 1) if w > 1 else ConstantLR(optimizer, 1.0, 0), w))
        phases += self._phases(optimizer)
        starts, at = [], 0
        for _, length in phases[:-1]:
            at += length
            starts.append(at)
        super().__init__(optimizer, [s for s, _ in phases], starts)

    def _phases(self, optimizer: torch.optim.Optimizer) -> list[tuple[LRScheduler, int]]:
        """The schedule after the warm-up: (scheduler, length in steps) per phase; the last one's length is unused."""
        raise NotImplementedError

    @staticmethod
    def _resolve(steps_per_epoch: float | None, total_steps: int | None) -> Stepping:
        ctx = _STEPPING.get()
        per_epoch = steps_per_epoch if steps_per_epoch is not None else (ctx.steps_per_epoch if ctx else None)
        total = total_steps if total_steps is not None else (ctx.total_steps if ctx else None)
        if per_epoch is None or total is None:
            raise ConfigError(
                "an epoch learning-rate schedule needs the run's stepping: build it inside a LightningModule's "
                "configure_optimizers (hyperzoo.lightning.schedule.build_lr_scheduler) or pass steps_per_epoch and "
                "total_steps"
            )
        if not per_epoch > 0 or total < 0:
            raise ConfigError(f"steps_per_epoch must be > 0 and total_steps >= 0, got {per_epoch} and {total}")
        return Stepping(int(total), float(per_epoch))

    def state_dict(self) -> dict[str, Any]:
        """SequentialLR's state (step, learning rates, the phases' states) without the run's stepping."""
        return {k: v for k, v in super().state_dict().items() if k not in self._OWN}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the position (step, learning rates); phase boundaries and lengths stay those of this run."""
        saved = state_dict.get("_schedulers") or []
        if len(saved) != len(self._schedulers):
            raise ConfigError(
                f"{type(self).__name__}: the checkpoint's schedule has {len(saved)} phases, this run's has "
                f"{len(self._schedulers)}; resume with the schedule settings the run started with"
            )
        own = {k: self.__dict__[k] for k in (*self._OWN, "_milestones") if k in self.__dict__}
        structure = [{k: getattr(s, k) for k in self._STRUCTURE if hasattr(s, k)} for s in self._schedulers]
        super().load_state_dict({k: v for k, v in state_dict.items() if k not in self._OWN})
        for scheduler, state, kept in zip(self._schedulers, saved, structure):
            scheduler.load_state_dict(state)
            scheduler.__dict__.update(kept)
        self.__dict__.update(own)


def _check(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{owner}: {name} must be a finite number >= 0, got {value}")


class MultiStepEpochsLR(EpochSchedule):
    """Times ``gamma`` at each of ``milestones`` (epochs), after an optional warm-up (torch's ``MultiStepLR``).

    Args:
        optimizer: the wrapped optimizer.
        milestones: epochs at which the rate is multiplied by ``gamma`` (GHN-2: ``[200, 250]``).
        gamma: the decay factor.
        warmup_epochs, steps_per_epoch, total_steps: see :class:`EpochSchedule`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[float] = (200, 250),
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
        steps_per_epoch: float | None = None,
        total_steps: int | None = None,
    ) -> None:
        _check(type(self).__name__, gamma=gamma, **{f"milestones[{i}]": m for i, m in enumerate(milestones)})
        self.settings = {"milestones": [float(m) for m in milestones], "gamma": float(gamma)}
        super().__init__(optimizer, warmup_epochs, steps_per_epoch, total_steps)

    def _phases(self, optimizer: torch.optim.Optimizer) -> list[tuple[LRScheduler, int]]:
        steps = sorted(self.stepping.steps(m) - self.warmup_steps for m in self.settings["milestones"])
        return [(MultiStepLR(optimizer, milestones=steps, gamma=self.settings["gamma"]), 0)]


class WarmupCosineLR(EpochSchedule):
    """Linear warm-up, then a half cosine from the base rate to 0 at the end of the run.

    Torch's ``CosineAnnealingLR`` over ``total_steps - warmup_steps``.

    Args:
        optimizer, warmup_epochs, steps_per_epoch, total_steps: see :class:`EpochSchedule`.
    """

    def _phases(self, optimizer: torch.optim.Optimizer) -> list[tuple[LRScheduler, int]]:
        length = max(1, self.stepping.total_steps - self.warmup_steps)
        return [(CosineAnnealingLR(optimizer, T_max=length), length)]


class WarmupConstantLR(EpochSchedule):
    """Linear warm-up, then the base rate.

    Args:
        optimizer, warmup_epochs, steps_per_epoch, total_steps: see :class:`EpochSchedule`.
    """

    def _phases(self, optimizer: torch.optim.Optimizer) -> list[tuple[LRScheduler, int]]:
        return [(ConstantLR(optimizer, factor=1.0, total_iters=0), 0)]


class ConstantCooldownLR(EpochSchedule):
    """Warm-up, the base rate, then linear to 0 over the last ``cooldown_epochs`` of the run (0 at its last step).

    The rate before the cooldown does not depend on the run's length: a run resumed with a larger ``max_steps``
    continues as if it had been started with it, as long as its cooldown had not begun.

    Args:
        optimizer: the wrapped optimizer.
        cooldown_epochs: length of the final linear decay (0: constant to the end).
        warmup_epochs, steps_per_epoch, total_steps: see :class:`EpochSchedule`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        cooldown_epochs: float = 0.0,
        warmup_epochs: float = 0.0,
        steps_per_epoch: float | None = None,
        total_steps: int | None = None,
    ) -> None:
        _check(type(self).__name__, cooldown_epochs=cooldown_epochs)
        self.settings = {"cooldown_epochs": float(cooldown_epochs)}
        super().__init__(optimizer, warmup_epochs, steps_per_epoch, total_steps)

    def _phases(self, optimizer: torch.optim.Optimizer) -> list[tuple[LRScheduler, int]]:
        total, warmup = self.stepping.total_steps, self.warmup_steps
        cooldown = self.stepping.steps(self.settings["cooldown_epochs"])
        constant = ConstantLR(optimizer, factor=1.0, total_iters=0)
        if cooldown <= 0:
            return [(constant, 0)]
        start = total - cooldown
        begin = max(warmup, start)  # a cooldown longer than the run after warm-up starts part-way
        first = 1.0 - (begin - start + 1) / cooldown
        return [(constant, begin - warmup), (_linear(optimizer, first, 0.0, total - 1 - begin), 0)]


class WarmRestartsLR(EpochSchedule):
    """Warm-up, then cosine cycles from the base rate to 0; the run's length plays no part.

    SGDR (Loshchilov & Hutter 2017) as torch's ``CosineAnnealingWarmRestarts``.

    Args:
        optimizer: the wrapped optimizer.
        restart_epochs: length of the first cycle (at least one step).
        restart_mult: each cycle is this many times longer than the previous one (an integer >= 1).
        warmup_epochs, steps_per_epoch, total_steps: see :class:`EpochSchedule`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        restart_epochs: float = 1.0,
        restart_mult: int = 1,
        warmup_epochs: float = 0.0,
        steps_per_epoch: float | None = None,
        total_steps: int | None = None,
    ) -> None:
        _check(type(self).__name__, restart_epochs=restart_epochs)
        if not restart_epochs > 0 or int(restart_mult) != restart_mult or restart_mult < 1:
            raise ConfigError(
                f"{type(self).__name__}: restart_epochs must be > 0 and restart_mult an integer >= 1, got "
                f"{restart_epochs} and {restart_mult}"
            )
        self.settings = {"restart_epochs": float(restart_epochs), "restart_mult": int(restart_mult)}
        super().__init__(optimizer, warmup_epochs, steps_per_epoch, total_steps)

    def _phases(self, optimizer: torch.optim.Optimizer) -> list[tuple[LRScheduler, int]]:
        period = max(1, self.stepping.steps(self.settings["restart_epochs"]))
        return [(CosineAnnealingWarmRestarts(optimizer, T_0=period, T_mult=self.settings["restart_mult"]), 0)]
