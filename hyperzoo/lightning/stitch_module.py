"""SN-Net training as a LightningModule: one random configuration per training step.

Pan et al., "Stitchable Neural Networks", CVPR 2023, Sec. 3.3: every step samples a configuration uniformly
(anchors included) and takes a cross-entropy step on it, so the stitching layers and the anchors are trained
for all configurations at once. Stitching layers use the optimizer's ``lr``, anchors ``lr * anchor_lr_scale``
(the reference recommends a lower rate for anchors than for stitches). Under DDP each rank samples its own
configuration, so unused parameters are normal: use ``strategy="ddp_find_unused_parameters_true"``.
"""

from __future__ import annotations

import functools
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from hyperzoo.lightning.common import (
    NonFiniteGuard,
    build_optimizer,
    check_training_args,
    optimizer_config,
    set_optimizer_args,
)
from hyperzoo.stitch.snnet import SNNet

__all__ = ["DEFAULT_STITCH_OPTIMIZER", "StitchModule"]

#: StitchModule's optimizer when none is given: SGD with Nesterov momentum.
DEFAULT_STITCH_OPTIMIZER = functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)


class StitchModule(NonFiniteGuard, pl.LightningModule):
    """Trains an :class:`~hyperzoo.stitch.snnet.SNNet` with a random configuration per step.

    Args:
        snnet: the stitched network (anchors + stitching layers, e.g. LS-initialised).
        optimizer: LightningCLI's ``OptimizerCallable``; its ``lr`` is the stitching layers' learning rate. None:
            SGD lr 0.01, Nesterov momentum 0.9, weight decay 5e-4.
        lr_scheduler: schedule stepped every optimizer step (``LRSchedulerCallable``, e.g.
            ``hyperzoo.lightning.schedule.WarmupCosineLR``); None: constant.
        anchor_lr_scale: anchors' learning rate relative to the optimizer's ``lr`` (0 freezes the anchors, and
            training then samples only the stitched configurations: an anchor alone would have nothing to train).
        seed: seed of the configuration sampler.
        val_configs: configurations evaluated in validation (None: the anchors only).
        freeze_bn: keep the anchors' BatchNorm statistics fixed (eval mode) while training; otherwise every
            stitched configuration also updates the running statistics of the back anchor, which then drift
            away from what the anchor alone needs.
        max_bad_steps: abort after this many consecutive non-finite losses.
    """

    optimizer_factory: OptimizerCallable
    lr_scheduler_factory: LRSchedulerCallable | None

    def __init__(
        self,
        snnet: SNNet,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        anchor_lr_scale: float = 0.1,
        seed: int = 0,
        val_configs: list[int] | None = None,
        freeze_bn: bool = True,
        max_bad_steps: int = 20,
    ) -> None:
        check_training_args("model", anchor_lr_scale=anchor_lr_scale, max_bad_steps=max_bad_steps)
        super().__init__()
        self.save_hyperparameters(ignore=["snnet"])
        set_optimizer_args(self, optimizer, lr_scheduler, DEFAULT_STITCH_OPTIMIZER)
        self.snnet = snnet
        self.generator = torch.Generator().manual_seed(seed)
        self.val_configs = val_configs if val_configs is not None else list(range(len(snnet.anchors)))
        self.bad_steps = 0
        self.skipped_steps = 0

    @property
    def trainable_configs(self) -> list[int]:
        """Configurations sampled in training: all, or only the stitched ones when the anchors are frozen."""
        if self.hparams.anchor_lr_scale > 0:  # type: ignore[attr-defined]
            return list(range(len(self.snnet.configs)))
        return [i for i, c in enumerate(self.snnet.configs) if not c.is_anchor]

    def forward(self, x: Tensor) -> Tensor:
        return self.snnet(x)

    def on_train_epoch_start(self) -> None:
        # anchors loaded from the zoo arrive in eval mode, and Lightning keeps module modes as they are
        self.snnet.train()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.hparams.freeze_bn:  # type: ignore[attr-defined]
            for m in self.snnet.anchors.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        x, y = batch
        # with frozen anchors an anchor configuration has nothing to train: sample among the stitched ones
        choices = self.trainable_configs
        cfg = choices[int(torch.randint(len(choices), (1,), generator=self.generator))]
        self.snnet.set_config(cfg)
        loss = F.cross_entropy(self.snnet(x), y)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(y))
        return self.guard(loss)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        for cfg in self.val_configs:
            logits = self.snnet(x, cfg)
            acc = (logits.argmax(1) == y).float().mean()
            self.log(f"val/acc_{self.snnet.configs[cfg].key}", acc, batch_size=len(y), sync_dist=True)

    def configure_optimizers(self) -> Any:
        hp: Any = self.hparams
        anchor = [p for p in self.snnet.anchors.parameters() if p.requires_grad]
        groups = [{"params": list(self.snnet.stitches.parameters())}]
        if hp.anchor_lr_scale > 0:
            groups.append({"params": anchor})
        else:
            for p in anchor:
                p.requires_grad_(False)
        opt = build_optimizer(self.optimizer_factory, groups)
        if hp.anchor_lr_scale > 0:
            opt.param_groups[1]["lr"] *= hp.anchor_lr_scale  # before the schedule records its base rates
        return optimizer_config(self, groups, optimizer=opt)
