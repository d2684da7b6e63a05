"""Training SMASH's one-shot model as a LightningModule (Brock et al., ICLR 2018, Sec. 3).

Every training batch samples a random architecture of the memory-bank space (seeded by the global step and the
rank, so a resumed run draws the same sequence), encodes it, lets the hypernet emit its 1x1 weights (fresh noise
``z`` each time) and runs the one-shot network with them; the cross-entropy updates the hypernet and the shared
weights together. Validation also draws a random architecture per batch ("sort of an average" over the space, as
in the reference), from a fixed validation seed, so the number is comparable across epochs.

Validation batches are collected and re-mixed with a fixed permutation before they are evaluated: the one-shot
network normalizes with batch statistics, and evaluation loaders may deliver class-sorted batches (hyperzoo's
cached CIFAR splits are stored by class), on which batch statistics are meaningless.

Optimizer (reference defaults): Adam, lr 1e-3, betas (0.5, 0.999), eps 1e-4, weight decay 1e-4 on the shared
weights and 0 on the hypernet; the reference's cosine schedule per step is ``WarmupCosineLR``. At the end of
training the model is exported as ``<default_root_dir>/smash.safetensors`` + ``smash.json`` for
``hyperzoo smash rank``.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from hyperzoo.lightning.common import NonFiniteGuard, optimizer_config, set_optimizer_args
from hyperzoo.smash.model import SMASH, save_smash
from hyperzoo.smash.space import SMASHSpace

__all__ = ["DEFAULT_SMASH_OPTIMIZER", "SMASHModule"]

#: SMASHModule's optimizer when none is given: the reference's Adam.
DEFAULT_SMASH_OPTIMIZER = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999), eps=1e-4, weight_decay=1e-4)


class SMASHModule(NonFiniteGuard, pl.LightningModule):
    """One-shot architecture search training: a random architecture per batch.

    Args:
        space: keyword arguments of :class:`~hyperzoo.smash.space.SMASHSpace` (``{}`` for the defaults).
        hypernet: keyword arguments of :class:`~hyperzoo.smash.hypernet.SMASHHypernet`.
        num_classes: classifier outputs (linked from the data module by ``hyperzoo fit``).
        optimizer: LightningCLI's ``OptimizerCallable``; its ``weight_decay`` applies to the shared (non-generated)
            weights only, the hypernet has none. None: the reference's Adam (lr 1e-3, betas (0.5, 0.999), eps 1e-4,
            weight decay 1e-4).
        lr_scheduler: schedule stepped every optimizer step (``LRSchedulerCallable``, e.g.
            ``hyperzoo.lightning.schedule.WarmupCosineLR``); None: constant.
        seed: seed of the architecture sequence.
        export: write ``smash.safetensors`` + ``smash.json`` into ``default_root_dir`` when training ends.
        max_bad_steps: consecutive non-finite steps tolerated before aborting.
    """

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        hypernet: dict[str, Any] | None = None,
        num_classes: int = 10,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        seed: int = 0,
        export: bool = True,
        max_bad_steps: int = 20,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        set_optimizer_args(self, optimizer, lr_scheduler, DEFAULT_SMASH_OPTIMIZER)
        self.space = SMASHSpace(**(space or {}))
        self.model = SMASH(self.space, num_classes, hypernet)
        self.bad_steps = 0
        self.skipped_steps = 0

    @property
    def hp(self) -> Any:
        return self.hparams

    def _arch_rng(self, stage: str, batch_idx: int) -> random.Random:
        # a string seed is hashed with SHA-512 by random.Random: reproducible across processes (unlike hash())
        index = int(self.global_step) if stage == "train" else batch_idx
        return random.Random(f"{self.hp.seed}-{stage}-{index}-{int(self.global_rank)}")

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        x, y = batch
        arch = self.space.sample(self._arch_rng("train", batch_idx))
        logits = self.model(x, arch)
        loss = F.cross_entropy(logits, y)
        n = len(y)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), prog_bar=True, batch_size=n)
        self.log("train/arch_ops", float(arch.num_ops), batch_size=n)
        return self.guard(loss)

    def on_validation_epoch_start(self) -> None:
        self._val_batches: list[tuple[Tensor, Tensor]] = []

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._val_batches.append((batch[0], batch[1]))

    def on_validation_epoch_end(self) -> None:
        batches = getattr(self, "_val_batches", [])
        if not batches:
            return
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        self._val_batches = []
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.hp.seed)).to(y.device)
        size = len(batches[0][1])
        losses, correct = [], []
        with torch.no_grad():
            for i, start in enumerate(range(0, len(y), size)):
                idx = perm[start : start + size]
                arch = self.space.sample(self._arch_rng("val", i))
                logits = self.model(x[idx], arch)
                losses.append(F.cross_entropy(logits, y[idx], reduction="sum"))
                correct.append((logits.argmax(1) == y[idx]).sum())
        n = len(y)
        self.log("val/loss", torch.stack(losses).sum() / n, prog_bar=True, sync_dist=True)
        self.log("val/acc", torch.stack(correct).sum().float() / n, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        groups = [
            {"params": list(self.model.net.parameters())},
            {"params": list(self.model.hypernet.parameters()), "weight_decay": 0.0},
        ]
        return optimizer_config(self, groups)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["skipped_steps"] = self.skipped_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_steps = int(checkpoint.get("skipped_steps", 0))

    def on_train_end(self) -> None:
        if self.hp.export and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            from pathlib import Path

            save_smash(
                self.model,
                Path(self.trainer.default_root_dir) / "smash.safetensors",
                global_step=int(self.global_step),
                epoch=int(self.current_epoch),
                skipped_steps=int(self.skipped_steps),
            )
