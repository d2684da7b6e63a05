"""Image classification with a Grassmann class head (GCR, Wang, Li & Zhang, ICCV 2023) as a LightningModule.

:class:`GCRClassifier` is :class:`~hyperzoo.lightning.classifier.ImageClassifier` with the final linear layer of
the registered model replaced by a :class:`~hyperzoo.layers.grassmann.GrassmannHead` and the optimizer wrapped
in :class:`~hyperzoo.layers.grassmann.GrassmannOptimizer`: the base optimizer (the module's ``optimizer``, e.g. SGD
or AdamW with weight decay) trains the backbone, Riemannian SGD with momentum moves the class subspaces on the
Grassmannian, and the per-step schedule scales both.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from hyperzoo.layers.grassmann import GrassmannOptimizer, replace_head
from hyperzoo.lightning.classifier import DEFAULT_OPTIMIZER, ImageClassifier
from hyperzoo.lightning.common import build_optimizer, optimizer_config, set_optimizer_args

__all__ = ["GCRClassifier"]


class GCRClassifier(ImageClassifier):
    """ImageClassifier with a Grassmann class head and a Riemannian optimizer for it (GCR, ICCV 2023).

    Logits ``gamma * ||S_i^T x / ||x|| ||``; the Grassmann step is ``lr * grassmann_lr_factor`` (``lr``: the
    optimizer's) times the schedule's factor (see :class:`~hyperzoo.layers.grassmann.GrassmannOptimizer` for the
    update rule).

    Args:
        gcr_k: dimension of each class subspace (1 gives ``gamma * |cos|``).
        gcr_gamma: logit scale (the paper's 25).
        grassmann_lr_factor: Grassmann step size relative to the base optimizer's ``lr``.
        grassmann_momentum: momentum of the Riemannian SGD.
        reorth_every: QR re-orthonormalization every this many steps.
        head: dotted name of the linear classifier to replace; None takes the model's last ``nn.Linear``.
        gcr_overlap: allow ``classes * gcr_k`` above the feature dimension (overlapping class subspaces, e.g.
            ResNet-20's 64 features with 10 classes and k = 8); without it that is an error.
        **kwargs: the arguments of :class:`~hyperzoo.lightning.classifier.ImageClassifier`.
    """

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
        gcr_k: int = 8,
        gcr_gamma: float = 25.0,
        grassmann_lr_factor: float = 1.0,
        grassmann_momentum: float = 0.9,
        reorth_every: int = 1,
        head: str | None = None,
        gcr_overlap: bool = False,
    ) -> None:
        super().__init__(
            model=model, num_classes=num_classes, model_kwargs=model_kwargs, optimizer=optimizer,
            lr_scheduler=lr_scheduler, decay_norm_and_bias=decay_norm_and_bias, label_smoothing=label_smoothing,
            max_bad_steps=max_bad_steps, channels_last=channels_last,
        )  # fmt: skip
        self.save_hyperparameters()
        set_optimizer_args(self, optimizer, lr_scheduler, DEFAULT_OPTIMIZER)  # the hparams just saved again
        replace_head(self.net, k=gcr_k, gamma=gcr_gamma, name=head, overlap=gcr_overlap)

    def configure_optimizers(self) -> Any:
        hp: Any = self.hparams
        factory = self.optimizer_factory
        lr = build_optimizer(factory, [torch.zeros(1, requires_grad=True)]).defaults["lr"]

        def base(groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
            return build_optimizer(factory, groups)  # its lr is the reference ``lr`` itself

        opt = GrassmannOptimizer(
            self.parameter_groups(),
            base=base,
            lr=lr,
            lr_factor=hp.grassmann_lr_factor,
            momentum=hp.grassmann_momentum,
            reorth_every=hp.reorth_every,
        )
        return optimizer_config(self, [], optimizer=opt)
