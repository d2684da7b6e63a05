"""MixtureGrowth as a Lightning callback: train member 0, then member 1, then grow width x2 and train on.

Paper: Pham, Teterwak, Nelson & Plummer, WACV 2024; the layers are in :mod:`hyperzoo.layers.mixture_growth`.

The run is split into three phases by epoch: ``[0, e0)`` trains member 0 of the template network,
``[e0, e0 + e1)`` member 1 (each member is a half-width network with its own templates, coefficients and
BatchNorms), and from ``e0 + e1`` on the grown network. At each phase start the callback rebuilds the optimizer
from the LightningModule's ``configure_optimizers`` (growth adds parameters) and installs a learning-rate
schedule over that phase alone, so every phase starts from the full rate as in the paper's separate runs.

Resuming: a checkpoint of a grown network loads into a fresh, ungrown one (the template network grows itself
before loading), and the phase follows from the epoch, so ``--ckpt_path last`` continues where a run stopped.
Single-device strategies only: a DDP wrapper would have to be rebuilt around the grown network.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.optimizer import _init_optimizers_and_lr_schedulers
from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.layers.mixture_growth import POLICIES, TemplateWideResNet

__all__ = ["MixtureGrowth", "find_template_network"]


def find_template_network(module: nn.Module) -> TemplateWideResNet:
    """The :class:`~hyperzoo.layers.mixture_growth.TemplateWideResNet` inside ``module``.

    Raises:
        ConfigError: there is none (the message says what to use instead).
    """
    nets = [m for m in module.modules() if isinstance(m, TemplateWideResNet)]
    if len(nets) != 1:
        raise ConfigError(
            f"MixtureGrowth needs exactly one template network (TemplateWideResNet) in {type(module).__name__}, "
            f"found {len(nets)}; use a template model such as `model: mgwrn16_2` (hyperzoo models 'mgwrn*')"
        )
    return nets[0]


class MixtureGrowth(Callback):
    """Trains the two half-width members in turn, then grows the network (width x2) and trains it.

    Args:
        member_epochs: epochs of member 0 and of member 1 (``[e0, e1]``); growth happens at epoch ``e0 + e1``,
            and the grown network trains for the rest of ``max_epochs``. ``e1 = 0`` grows right after member 0
            (the second member then stays at its initialization).
        policy: new-coefficient policy, one of ``orthogonal`` (paper default), ``copy``, ``random``, ``zero``.
        noise: scale of the new coefficients (``orthogonal``, ``random``) or of their noise (``copy``).
        new_templates: the off-diagonal blocks use fresh random templates (the random-new-weights baseline).
        growth_lr_scale: learning-rate multiplier of the grown phase relative to the module's ``lr``.
        schedule: per-phase schedule, ``cosine`` (torch's ``CosineAnnealingLR`` over the phase, stepped per optimizer
            step) or ``constant``; it replaces the module's own ``lr_scheduler``.
    """

    def __init__(
        self,
        member_epochs: list[int] | tuple[int, int] = (1, 1),
        policy: str = "orthogonal",
        noise: float = 1.0,
        new_templates: bool = False,
        growth_lr_scale: float = 1.0,
        schedule: str = "cosine",
    ) -> None:
        super().__init__()
        epochs = list(member_epochs)
        if len(epochs) != 2 or epochs[0] < 1 or epochs[1] < 0:
            raise ConfigError(f"MixtureGrowth.member_epochs must be [e0 >= 1, e1 >= 0], got {member_epochs}")
        if policy not in POLICIES:
            raise ConfigError(f"MixtureGrowth: unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
        if schedule not in ("cosine", "constant"):
            raise ConfigError(f"MixtureGrowth: schedule must be 'cosine' or 'constant', got {schedule!r}")
        self.member_epochs = epochs
        self.policy, self.noise, self.new_templates = policy, noise, new_templates
        self.growth_lr_scale, self.schedule = growth_lr_scale, schedule
        self.grown_at_step: int | None = None
        self._phase: int | None = None  # the phase whose optimizer and schedule are installed

    @property
    def growth_epoch(self) -> int:
        return self.member_epochs[0] + self.member_epochs[1]

    def phase(self, epoch: int) -> int:
        """0 and 1: training member 0 / 1; 2: the grown network."""
        if epoch < self.member_epochs[0]:
            return 0
        return 1 if epoch < self.growth_epoch else 2

    def _phase_bounds(self, phase: int, trainer: pl.Trainer) -> tuple[int, int]:
        """First epoch of ``phase`` and its length in epochs."""
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else self.growth_epoch + 1
        starts = [0, self.member_epochs[0], self.growth_epoch, max(max_epochs, self.growth_epoch + 1)]
        return starts[phase], starts[phase + 1] - starts[phase]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        net = find_template_network(pl_module)
        if (
            stage == "fit"
            and not getattr(trainer, "fast_dev_run", False)
            and trainer.max_epochs is not None
            and 0 < trainer.max_epochs <= self.growth_epoch
        ):
            raise ConfigError(
                f"MixtureGrowth grows at epoch {self.growth_epoch} but trainer.max_epochs={trainer.max_epochs}; "
                "raise max_epochs or shorten member_epochs"
            )
        if not net.grown:
            net.set_member(0)

    def _enter(self, trainer: pl.Trainer, pl_module: pl.LightningModule, phase: int, rebuild: bool) -> None:
        net = find_template_network(pl_module)
        if phase == 2 and not net.grown:
            net.grow(self.policy, self.noise, self.new_templates)
            self.grown_at_step = trainer.global_step
            rebuild = True
        elif phase < 2:
            if net.grown:
                raise ConfigError(
                    f"MixtureGrowth: the network is grown already but epoch {trainer.current_epoch} is before "
                    f"growth (epoch {self.growth_epoch}); growth happens once, check member_epochs and the checkpoint"
                )
            net.set_member(phase)
        if rebuild:
            optimizers, _ = _init_optimizers_and_lr_schedulers(pl_module)
            trainer.strategy.optimizers = optimizers
        start_epoch, length = self._phase_bounds(phase, trainer)
        per_epoch = max(1, int(trainer.num_training_batches) // max(1, trainer.accumulate_grad_batches))
        total = max(1, length * per_epoch)
        offset = max(0, trainer.global_step - start_epoch * per_epoch)
        scale = self.growth_lr_scale if phase == 2 else 1.0
        opt = trainer.strategy.optimizers[0]
        sched = self._phase_schedule(opt, total, offset, scale)
        trainer.strategy.lr_scheduler_configs = [LRSchedulerConfig(sched, interval="step")] if sched else []
        self._phase = phase

    def _phase_schedule(
        self, opt: torch.optim.Optimizer, total: int, offset: int, scale: float
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The phase's schedule from the groups' ``initial_lr`` times ``scale``, advanced ``offset`` steps."""
        bases = [group.setdefault("initial_lr", group["lr"]) for group in opt.param_groups]
        for group, base in zip(opt.param_groups, bases):
            group["lr"] = base * scale
        if self.schedule == "constant":
            return None
        for group in opt.param_groups:
            del group["initial_lr"]  # the scheduler takes the scaled rate as its base
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        with warnings.catch_warnings():  # fast-forward of a resumed phase, before any optimizer step
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            for _ in range(offset):
                sched.step()
        for group, base in zip(opt.param_groups, bases):
            group["initial_lr"] = base  # the unscaled rate, for the next phase
        return sched

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        phase = self.phase(trainer.current_epoch)
        net = find_template_network(pl_module)
        # a fresh start in phase 0 keeps the module's optimizer; anything else must match the network
        self._enter(trainer, pl_module, phase, rebuild=phase == 2 and not net.grown)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        phase = self.phase(trainer.current_epoch)
        if phase != self._phase:
            self._enter(trainer, pl_module, phase, rebuild=True)

    def state_dict(self) -> dict[str, Any]:
        return {"grown_at_step": self.grown_at_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.grown_at_step = state_dict.get("grown_at_step")
