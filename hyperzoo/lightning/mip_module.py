"""A hyperparameter-conditioned hypernetwork (MIP or the default parametrization) as a LightningModule.

The hypernet emits every generated weight of a target network from a hyperparameter ``g in [0, 1]``; here ``g``
sets the loss, label smoothing ``eps = max_smoothing * g``, so one hypernet learns the whole family of networks
trained with ``eps`` in ``[0, max_smoothing]`` (the amortized-hyperparameter setting of González Ortiz et al., ICLR
2024). ``g ~ U(0, 1)`` is drawn once per batch (``per_sample=False``, one weight set per step, as hyperlight does)
or once per image (``per_sample=True``: a batch of weight sets through
:func:`~hyperzoo.hypernets.functional.batched_forward`, no Python loop). Validation reports the accuracy at each of
``val_g``.

Parametrizations (:class:`~hyperzoo.hypernets.mip.MIPHypernet`): ``encoding="cos|sin", residual=True`` is MIP
(``theta = theta0 + h(E(g))``, ``theta0`` initialised from the target's own init); ``encoding="none",
residual=False`` is the default ``theta = h(g)``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from hyperzoo.hypernets.functional import batched_forward, functional_forward
from hyperzoo.hypernets.mip import MIPHypernet
from hyperzoo.lightning.common import NonFiniteGuard, optimizer_config, set_optimizer_args

__all__ = ["DEFAULT_MIP_OPTIMIZER", "MIPModule", "build_target", "mip_cnn"]

#: MIPModule's optimizer when none is given.
DEFAULT_MIP_OPTIMIZER = functools.partial(torch.optim.Adam, lr=1e-3)


def mip_cnn(num_classes: int = 10, width: int = 16) -> nn.Module:
    """The small CNN of the MIP experiment: 3 x (3x3 conv, ReLU, 2x2 max-pool) + linear (~19.5k params at width 16)."""
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * w * 4 * 4, num_classes),
    )  # fmt: skip


def build_target(model: str, num_classes: int, model_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """``"mip_cnn"`` (:func:`mip_cnn`) or any registered model name (``resnet20``, ...)."""
    if model == "mip_cnn":
        return mip_cnn(num_classes, **(model_kwargs or {}))
    from hyperzoo.nets import create_model

    return create_model(model, num_classes=num_classes, **(model_kwargs or {}))


class MIPModule(NonFiniteGuard, pl.LightningModule):
    """Trains a :class:`MIPHypernet` for a target network; the target's own parameters are never trained.

    Args:
        model: target network: ``mip_cnn`` or a registered model.
        model_kwargs: arguments of the target's builder.
        num_classes: classifier outputs (linked from the data module by ``hyperzoo fit``).
        hypernet: body: ``mlp``, ``chunked`` or ``ghn_decoder``.
        hidden: hidden widths of the body.
        encoding: ``cos|sin`` (MIP), ``z|1-z`` or ``none``.
        residual: ``theta = theta0 + h(E(g))`` (MIP) or ``h(E(g))``.
        norm: ``generate`` or ``keep`` normalization-layer parameters (kept ones are trained directly).
        max_smoothing: label smoothing at ``g = 1``.
        per_sample: one ``g`` per image (batched weight sets) instead of one per batch.
        val_g: hyperparameters at which validation accuracy is reported.
        optimizer: optimizer of the hypernet (and kept parameters), LightningCLI's ``OptimizerCallable``; None:
            Adam, lr 1e-3.
        lr_scheduler: schedule stepped every optimizer step (``LRSchedulerCallable``, e.g.
            ``hyperzoo.lightning.schedule.WarmupCosineLR``); None: constant.
        max_bad_steps: consecutive non-finite steps tolerated before aborting.
    """

    def __init__(
        self,
        model: str = "mip_cnn",
        model_kwargs: dict[str, Any] | None = None,
        num_classes: int = 10,
        hypernet: str = "mlp",
        hidden: Sequence[int] = (32, 64),
        encoding: str = "cos|sin",
        residual: bool = True,
        norm: Literal["generate", "keep"] = "generate",
        max_smoothing: float = 0.3,
        per_sample: bool = False,
        val_g: Sequence[float] = (0.0, 0.5, 1.0),
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        max_bad_steps: int = 20,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        set_optimizer_args(self, optimizer, lr_scheduler, DEFAULT_MIP_OPTIMIZER)
        self.target = build_target(model, num_classes, model_kwargs)
        self.hnet = MIPHypernet(
            self.target, hypernet, encoding=encoding, residual=residual, theta0="target" if residual else "zeros",
            norm=norm, hidden=tuple(hidden),
        )  # fmt: skip
        generated = {s.name for s in self.hnet.specs}
        for name, p in self.target.named_parameters():
            p.requires_grad_(name not in generated)  # kept (norm="keep") parameters train directly
        self.bad_steps = 0
        self.skipped_steps = 0

    @property
    def hp(self) -> Any:
        return self.hparams

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """Logits of ``x`` ``[n, ...]`` for ``g`` ``[1]`` (one weight set) or ``[n, 1]`` (one per image)."""
        if g.dim() == 2:
            return batched_forward(self.target, self.hnet(g), x, per_sample=True, check=False)
        return functional_forward(self.target, self.hnet(g), x, check=False)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        x, y = batch
        n = len(y)
        if self.hp.per_sample:
            g = torch.rand(n, 1, device=x.device)
            logits = self(x, g)
            eps = (self.hp.max_smoothing * g[:, 0]).unsqueeze(1)
            logp = F.log_softmax(logits, dim=1)
            loss = -((1 - eps) * logp.gather(1, y[:, None]) + eps * logp.mean(1, keepdim=True)).mean()
        else:
            g = torch.rand(1, device=x.device)
            logits = self(x, g)
            loss = F.cross_entropy(logits, y, label_smoothing=float(self.hp.max_smoothing * g))
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), prog_bar=True, batch_size=n)
        return self.guard(loss)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        accs = []
        for gv in self.hp.val_g:
            logits = self(x, torch.tensor([float(gv)], device=x.device))
            acc = (logits.argmax(1) == y).float().mean()
            accs.append(acc)
            self.log(f"val/acc_g{gv:g}", acc, batch_size=len(y), sync_dist=True)
        self.log("val/acc", torch.stack(accs).mean(), prog_bar=True, batch_size=len(y), sync_dist=True)

    def configure_optimizers(self) -> Any:
        return optimizer_config(self, [p for p in self.parameters() if p.requires_grad])
