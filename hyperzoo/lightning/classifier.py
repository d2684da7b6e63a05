"""Image classification as a LightningModule: any registered model, any torch optimizer and schedule.

The module is thin: the network comes from the registry (:func:`hyperzoo.nets.create_model`), the data module
delivers normalized float batches (augmentation runs batched on the device), and this class adds the loss,
the optimizer, the learning-rate schedule and the metrics. ``hyperzoo fit --config
experiments/configs/resnet20_cifar10.yaml`` drives it through LightningCLI.
"""

from __future__ import annotations

import functools
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.lightning.common import NonFiniteGuard, check_training_args, optimizer_config, set_optimizer_args
from hyperzoo.nets import create_model

__all__ = ["DEFAULT_OPTIMIZER", "ImageClassifier", "predicted_init"]

#: ImageClassifier's optimizer when none is given: the He et al. (2016) recipe's SGD.
DEFAULT_OPTIMIZER = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-4)


def predicted_init(
    net: nn.Module,
    ghn: str | nn.Module,
    norms: str = "predicted",
    orth: bool = False,
    orth_from: int = 1,
    noise: float = 0.0,
    seed: int | None = None,
) -> nn.Module:
    """Fills ``net``'s parameters with a GHN's prediction (in place) and resets batch-norm running statistics.

    Args:
        net: the network, at its default initialisation (its ``expected_input_size``, e.g. 32 after
            ``adapt_cifar``, sets the traced graph).
        ghn: a GHN, or a name or path :func:`hyperzoo.ghn.from_pretrained` accepts.
        norms: ``"predicted"`` keeps the predicted weights as they are; ``"default"`` rescales every weight that
            feeds only a batch norm to the norm ``net``'s default initialisation gave it
            (:func:`hyperzoo.graphs.scale_invariance.match_norms`): the function with batch statistics is
            unchanged, and gradient descent sees the weight scale its learning rate is tuned for.
        orth: GHN-orth (Knyazev 2022): replace every predicted conv/linear weight but the classifier's by the
            orthogonal factor of its QR decomposition (:func:`hyperzoo.nets.orthogonalize.orthogonalize_`). This
            changes the function: an initialisation for fine-tuning.
        orth_from: orthogonalize from this conv/linear layer on (1-based; ppuda's ``--layer``).
        noise: ``beta``: Gaussian noise at this fraction of each weight's row-correlation std, added before the
            orthogonalization (ppuda: 3e-5 with ``orth``; GHN-3: 1e-5 alone). 0: none.
        seed: seed of the noise (None: torch's global generator).

    Returns:
        ``net``.
    """
    from hyperzoo.ghn.published import from_pretrained

    if norms not in ("predicted", "default"):
        raise ConfigError(f"norms={norms!r}: must be 'predicted' or 'default'")
    if orth_from < 1 or noise < 0:
        raise ConfigError(f"orth_from={orth_from}, noise={noise}: orth_from counts layers from 1, noise is >= 0")
    default_norms = {k: float(p.detach().norm()) for k, p in net.named_parameters()}
    model = from_pretrained(ghn) if isinstance(ghn, str) else ghn
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(net, bn_train=False)
    model.train(was_training)
    if norms == "default":
        from hyperzoo.graphs.scale_invariance import match_norms

        match_norms(net, default_norms)
    if orth or noise > 0:
        from hyperzoo.nets.orthogonalize import orthogonalize_

        generator = None if seed is None else torch.Generator().manual_seed(seed)
        orthogonalize_(net, from_layer=orth_from if orth else None, noise=noise, generator=generator)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.reset_running_stats()
    return net


class ImageClassifier(NonFiniteGuard, pl.LightningModule):
    """Supervised image classification with a registered model.

    Args:
        model: a registered model name (``hyperzoo models`` lists them), e.g. ``resnet20`` or ``resnet50``.
        num_classes: classifier outputs (linked from the data module by ``hyperzoo fit``).
        model_kwargs: extra arguments for the model entrypoint, e.g. ``{adapt_cifar: true}`` for a torchvision
            model on 32x32 images, ``{width: 2}`` for a CIFAR ResNet.
        optimizer: the optimizer, called with the parameter groups (LightningCLI's ``OptimizerCallable``; in YAML
            ``{class_path: torch.optim.SGD, init_args: {lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}}``); None:
            :data:`DEFAULT_OPTIMIZER` (SGD lr 0.1, momentum 0.9, weight decay 1e-4).
        lr_scheduler: the learning-rate schedule, called with the optimizer and stepped every optimizer step
            (``LRSchedulerCallable``: any torch scheduler, or an epoch schedule of :mod:`hyperzoo.lightning.schedule`
            such as ``WarmupCosineLR``); None: a constant rate.
        decay_norm_and_bias: apply weight decay to norm-layer parameters and biases too (the He et al. recipe
            does; set false to exempt them).
        label_smoothing: label smoothing of the cross-entropy loss.
        max_bad_steps: abort after this many consecutive steps with a non-finite loss (such steps are skipped).
        channels_last: run the network in channels-last memory format (about 2x faster convolutions on CPU).
        ghn_init: initialise the network with a GHN's prediction (any name or path
            :func:`hyperzoo.ghn.from_pretrained` accepts, e.g. ``ghn2-cifar10``) instead of the default init: the
            GHN predicts every parameter in eval mode and batch-norm running statistics are reset; then training
            fine-tunes as usual (predicted init + fine-tuning, as in the GHN papers).
        ghn_init_norms: ``"predicted"`` (as predicted) or ``"default"``: weights that feed only a batch norm are
            rescaled to the default init's norms, which leaves the predicted function unchanged
            (:func:`predicted_init`).
        ghn_init_orth: GHN-orth: orthogonalize the predicted conv/linear weights but the classifier's (QR; an
            initialisation for fine-tuning that changes the predicted function, :func:`predicted_init`).
        ghn_init_orth_from: orthogonalize from this conv/linear layer on (1-based).
        ghn_init_noise: noise added to the predicted weights, relative to each weight's row-correlation std
            (ppuda: 3e-5 with orthogonalization; GHN-3: 1e-5). Seeded by the run's seed.
    """

    optimizer_factory: OptimizerCallable
    lr_scheduler_factory: LRSchedulerCallable | None

    def __init__(
        self,
        model: str = "resnet20",
        num_classes: int = 10,
        model_kwargs: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        decay_norm_and_bias: bool = True,
        label_smoothing: float = 0.0,
        max_bad_steps: int = 20,
        channels_last: bool = True,
        ghn_init: str | None = None,
        ghn_init_norms: str = "predicted",
        ghn_init_orth: bool = False,
        ghn_init_orth_from: int = 1,
        ghn_init_noise: float = 0.0,
    ) -> None:
        check_training_args(
            "model",
            num_classes=num_classes,
            label_smoothing=label_smoothing,
            max_bad_steps=max_bad_steps,
        )
        super().__init__()
        self.save_hyperparameters()
        set_optimizer_args(self, optimizer, lr_scheduler, DEFAULT_OPTIMIZER)
        self.net: nn.Module = create_model(model, num_classes=num_classes, **(model_kwargs or {}))
        transforms = [
            f"{name}={value!r}"
            for name, value, default in (
                ("ghn_init_norms", ghn_init_norms, "predicted"),
                ("ghn_init_orth", ghn_init_orth, False),
                ("ghn_init_noise", ghn_init_noise, 0.0),
            )
            if value != default
        ]
        if transforms and not ghn_init:
            raise ConfigError(f"{', '.join(transforms)} applies to a predicted init; also pass ghn_init")
        if ghn_init:
            seed = torch.initial_seed() % (1 << 63)
            predicted_init(
                self.net, ghn_init, ghn_init_norms, ghn_init_orth, ghn_init_orth_from, ghn_init_noise, seed=seed
            )
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.bad_steps = 0
        self.skipped_steps = 0

    @property
    def hp(self) -> Any:
        """The saved hyperparameters (an attribute dict of the constructor arguments)."""
        return self.hparams

    def forward(self, x: Tensor) -> Tensor:
        if self.hp.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # a no-op for batches from BatchAugment
        return self.net(x)

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hp.label_smoothing if stage == "train" else 0.0)
        sync = stage != "train"
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(y), sync_dist=sync)
        self.log(f"{stage}/acc", (logits.argmax(1) == y).float().mean(), prog_bar=True, batch_size=len(y),
                 sync_dist=sync)  # fmt: skip
        if stage != "train" and logits.shape[1] >= 5:
            top5 = (logits.topk(5, dim=1).indices == y[:, None]).any(1).float().mean()
            self.log(f"{stage}/acc5", top5, batch_size=len(y), sync_dist=sync)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        return self.guard(self._shared_step(batch, "train"))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Parameters split into decayed and (optionally) non-decayed groups."""
        hp: Any = self.hparams
        if hp.decay_norm_and_bias:
            return [{"params": [p for p in self.parameters() if p.requires_grad]}]
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for p in self.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizers(self) -> Any:
        return optimizer_config(self, self.parameter_groups())
