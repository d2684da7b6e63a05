"""Training a graph hypernetwork as a LightningModule (Knyazev et al. 2021, Sec. 4; Knyazev et al. 2023).

One step: a meta-batch of architectures and one image batch arrive (:class:`~hyperzoo.data.GraphImageDataModule`);
each network is built structure-only on the ``meta`` device from its ``net_args`` (no memory, no weight init), the
GHN predicts the parameters of all of them in one batched pass, every network runs on the same images through
:func:`torch.func.functional_call` with its predicted parameters (batch-norm in batch-statistics mode), and the
loss is the mean cross-entropy over the networks (plus GHN-3's optional penalty on predicted-parameter norms).
Gradients reach the GHN through the predicted tensors; clipping, mixed precision, DDP and checkpoint/resume are
the Trainer's. A non-finite loss skips the step (counted, aborting after ``max_bad_steps`` in a row).

Validation predicts the datamodule's held-out architectures once and reports their mean top-1 (predicted
parameters only, no fine-tuning), the metric of the papers.
"""

from __future__ import annotations

import functools
import random
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch_geometric.data import Batch

from hyperzoo.ghn.ghn import GHN
from hyperzoo.ghn.variants import create_ghn
from hyperzoo.graphs.arch_graph import ArchGraph, as_graph_list, shape_to_4d
from hyperzoo.hypernets.functional import functional_forward, prune_parameters, set_norm_statistics
from hyperzoo.lightning.common import NonFiniteGuard, check_training_args, optimizer_config, set_optimizer_args

__all__ = ["DEFAULT_GHN_OPTIMIZER", "GHNModule", "build_target", "prune_unpredicted", "reshape_graph"]

#: GHNModule's optimizer when none is given: GHN-2's Adam (lr 1e-3, L2 weight decay 1e-5).
DEFAULT_GHN_OPTIMIZER = functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=1e-5)


def reshape_graph(graph: ArchGraph, net: nn.Module) -> ArchGraph:
    """A copy of ``graph`` whose parameter nodes carry ``net``'s shapes (the same architecture at another width)."""
    params = dict(net.named_parameters())
    shape = graph.shape.clone()
    for v, name in enumerate(graph.param_names):
        if name and name in params:
            shape[v] = torch.tensor(shape_to_4d(tuple(params[name].shape)))
    out = graph.clone()
    out.shape = shape
    return out


def build_target(
    net_args: dict[str, Any], num_classes: int, width: int | None = None, fc_dim: int | None = None
) -> nn.Module:
    """The network of ``net_args`` on the meta device, batch-norm in batch-statistics mode (no running stats).

    ``width`` and ``fc_dim`` replace the stored ``C`` and classifier width where given. ``net_args`` of an
    architecture-family store (a ``"space"`` key, :mod:`hyperzoo.nets.spaces`) rebuild their network as stored.
    """
    from hyperzoo.nets.deepnets1m import build_network

    if "space" in net_args:
        from hyperzoo.nets.spaces import build_space_network

        return set_norm_statistics(build_space_network(net_args, num_classes, device="meta", light=True), "batch")

    extra: dict[str, Any] = {} if fc_dim is None or "model" in net_args else {"fc_dim": fc_dim}
    net = build_network(net_args, C=width, num_classes=num_classes, device="meta", **extra)
    return set_norm_statistics(net, "batch")


def prune_unpredicted(net: nn.Module, params: dict[str, Tensor]) -> nn.Module:
    """Sets the parameters without a prediction to ``None`` (:func:`~hyperzoo.hypernets.functional.prune_parameters`).

    Modules absent from the graph (e.g. a cell's unused input preprocessing) then count as removed, as the
    reference prunes them (``Network`` skips such ops).
    """
    return prune_parameters(net, params)


def _logits(net: nn.Module, params: dict[str, Tensor], images: Tensor) -> Tensor:
    """The logits of ``net`` with the predicted ``params`` (its batch norms already use batch statistics)."""
    out = functional_forward(net, params, images, norm_stats=None, check=False)
    return out[0] if isinstance(out, tuple) else out


class GHNModule(NonFiniteGuard, pl.LightningModule):
    """Trains a GHN variant (``ghn1``, ``ghn2``, ``mlp``, ``ghn3_t``, ...) on a graph dataset and images.

    Args:
        ghn: the variant name (:func:`hyperzoo.ghn.list_ghns`).
        ghn_kwargs: overrides of the variant's configuration, e.g. ``{hid: 64}``.
        num_classes: classes of the image dataset (linked from the data module by ``hyperzoo fit``).
        optimizer: the optimizer of the GHN's parameters (LightningCLI's ``OptimizerCallable``): GHN-2's
            ``torch.optim.Adam`` (lr 1e-3, weight decay 1e-5; the default, None) or GHN-3's ``torch.optim.AdamW``
            (lr 4e-4, weight decay 1e-2).
        lr_scheduler: the schedule, stepped every optimizer step (``LRSchedulerCallable``; None: constant). The epoch
            schedules of :mod:`hyperzoo.lightning.schedule`: ``MultiStepEpochsLR`` (GHN-2: x0.1 at epochs 200 and 250
            of 300), ``WarmupCosineLR`` (GHN-3), ``WarmupConstantLR``, and the two that need no total length in
            advance (long runs resumed with a larger ``max_steps``): ``ConstantCooldownLR`` (constant, then linear
            to 0 over the last ``cooldown_epochs``) and ``WarmRestartsLR`` (cosine cycles of ``restart_epochs``,
            each ``restart_mult`` times longer than the last, as ``CosineAnnealingWarmRestarts``).
        init_from: start from a trained GHN's weights (any name or path :func:`hyperzoo.ghn.from_pretrained`
            accepts, e.g. ``ghn2-cifar10``), e.g. when a run folder and its ``last.ckpt`` are gone; its
            configuration must match ``ghn`` and ``ghn_kwargs``. Resuming from a checkpoint overrides it.
        label_smoothing: of the cross-entropy loss (0.1 on ImageNet in the references).
        predparam_wd: weight of GHN-3's penalty ``sum ||p||_F`` over predicted tensors (3e-5 in GHN-3, 0 in GHN-2).
        width_rule: how each training network's width ``C`` and classifier width ``fc_dim`` are chosen at every
            step. ``"reference"`` (the GHN-2 recipe, ppuda's training loader): by the network's size
            (:func:`~hyperzoo.nets.deepnets1m.reference_training_widths`: narrow ranges for networks over 0.2/0.4/
            0.8 M parameters, with 5x5/7x7 convs, without global pooling or with many cells), ``C`` from
            ``widths`` (default 32..128 step 16) and ``fc_dim`` from ``fc_dims`` (default 64..512 step 64).
            ``"uniform"`` (hyperzoo's former rule): ``C`` uniformly from ``widths`` whatever the network, ``fc_dim``
            as stored (256 in DeepNets-1M); ``widths=None`` keeps each graph's stored width (32 for DeepNets-1M).
        widths: candidate widths ``C`` (see ``width_rule``).
        fc_dims: candidate classifier widths of the ``"reference"`` rule (None: 64..512 step 64).
        channels_last: run the target networks' convolutions channels-last (about 2x faster on CPU).
        max_bad_steps: consecutive non-finite steps tolerated before aborting.
    """

    def __init__(
        self,
        ghn: str = "ghn2",
        ghn_kwargs: dict[str, Any] | None = None,
        num_classes: int = 10,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        label_smoothing: float = 0.0,
        predparam_wd: float = 0.0,
        widths: list[int] | None = None,
        width_rule: Literal["reference", "uniform"] = "uniform",
        fc_dims: list[int] | None = None,
        channels_last: bool = True,
        max_bad_steps: int = 50,
        init_from: str | None = None,
    ) -> None:
        check_training_args(
            "model",
            num_classes=num_classes,
            label_smoothing=label_smoothing,
            predparam_wd=predparam_wd,
            max_bad_steps=max_bad_steps,
            widths=widths,
        )
        super().__init__()
        if width_rule not in ("reference", "uniform"):
            raise ValueError(f"width_rule must be 'reference' or 'uniform', got {width_rule!r}")
        self.save_hyperparameters()
        set_optimizer_args(self, optimizer, lr_scheduler, DEFAULT_GHN_OPTIMIZER)
        self.ghn: GHN = create_ghn(ghn, num_classes=num_classes, **(ghn_kwargs or {}))
        if init_from:
            self._init_from(init_from)
        self.bad_steps = 0
        self.skipped_steps = 0
        self._val_preds: list[tuple[nn.Module, dict[str, Tensor]]] = []
        self._rng = random.Random(0)

    @property
    def hp(self) -> Any:
        return self.hparams

    # ------------------------------------------------------------------ targets
    def _targets(self, graphs: list[ArchGraph], widths: list[int] | None) -> tuple[list[nn.Module], list[ArchGraph]]:
        nets, out_graphs = [], []
        reference = self.hp.get("width_rule", "uniform") == "reference"
        for g in graphs:
            fc_dim: int | None = None
            width: int | None
            if "space" in g.net_args:  # family networks train as stored (their widths are part of the space)
                width = None
            elif reference and "model" not in g.net_args:
                from hyperzoo.nets.deepnets1m import REFERENCE_FC_DIMS, REFERENCE_WIDTHS, reference_training_widths

                width, fc_dim = reference_training_widths(
                    g.net_args, self._rng, widths or REFERENCE_WIDTHS, self.hp.get("fc_dims") or REFERENCE_FC_DIMS
                )
            else:
                width = self._rng.choice(widths) if widths else None
            net = build_target(g.net_args, self.hp.num_classes, width, fc_dim)
            nets.append(net)
            out_graphs.append(reshape_graph(g, net) if width is not None or fc_dim is not None else g)
        return nets, out_graphs

    def _prepare(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.hp.channels_last:
            return params
        return {k: (v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v) for k, v in params.items()}

    def _images(self, images: Tensor) -> Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.hp.channels_last else images

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: tuple[Tensor, Tensor, Batch | list[ArchGraph]], batch_idx: int) -> Tensor | None:
        images, labels, meta_batch = batch  # the graphs as a PyG Batch (GraphImageDataModule) or a list
        graphs = as_graph_list(meta_batch)  # one per network: each is built, and maybe widened, on its own
        images = self._images(images)
        self._rng.seed(hash((self.hp.num_classes, self.global_step, self.global_rank)))
        nets, graphs = self._targets(graphs, self.hp.widths)
        preds = self.ghn.predict_batch(nets, graphs)
        for net, params in zip(nets, preds):
            prune_unpredicted(net, params)
        losses, correct = [], []
        for net, params in zip(nets, preds):
            logits = _logits(net, self._prepare(params), images)
            if logits.dtype not in (torch.float32, torch.float64):
                logits = logits.float()  # the loss of half-precision logits in float32; float64 stays float64
            losses.append(F.cross_entropy(logits, labels, label_smoothing=self.hp.label_smoothing))
            correct.append((logits.argmax(1) == labels).float().mean())
        loss = torch.stack(losses).mean()
        if self.hp.predparam_wd > 0:
            reg = sum(p.norm() for pred in preds for p in pred.values())
            loss = loss + self.hp.predparam_wd * reg / len(preds)
        n = len(labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/acc", torch.stack(correct).mean(), prog_bar=True, batch_size=n)
        self.log("train/archs", float(len(nets)), batch_size=n)
        return self.guard(loss)

    def on_validation_epoch_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        graphs = list(getattr(dm, "val_graphs", []) or [])
        self._val_preds = []
        if not graphs:
            return
        with torch.no_grad():
            nets = [build_target(g.net_args, self.hp.num_classes) for g in graphs]
            preds = self.ghn.predict_batch(nets, graphs)
        self._val_preds = [(prune_unpredicted(net, p), self._prepare(p)) for net, p in zip(nets, preds)]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        if not self._val_preds:
            return
        images, labels = batch
        images = self._images(images)
        accs = torch.stack([(_logits(net, p, images).argmax(1) == labels).float().mean() for net, p in self._val_preds])
        self.log("val/acc", accs.mean(), prog_bar=True, batch_size=len(labels), sync_dist=True)
        self.log("val/acc_best_arch", accs.max(), batch_size=len(labels), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._val_preds = []

    # ------------------------------------------------------------------ optimisation and checkpoints
    def configure_optimizers(self) -> Any:
        return optimizer_config(self, self.ghn.parameters())

    def _init_from(self, name_or_path: str) -> None:
        """Loads a trained GHN's weights into :attr:`ghn` (same architecture), with a clear error otherwise."""
        from hyperzoo.errors import ConfigError
        from hyperzoo.ghn.published import from_pretrained

        source = from_pretrained(name_or_path).state_dict()
        own = self.ghn.state_dict()
        missing = sorted(set(own) - set(source))
        unexpected = sorted(set(source) - set(own))
        wrong = sorted(k for k in set(own) & set(source) if own[k].shape != source[k].shape)
        if missing or unexpected or wrong:
            raise ConfigError(
                f"init_from={name_or_path!r} does not fit ghn={self.hp.ghn!r} with ghn_kwargs="
                f"{self.hp.ghn_kwargs}: missing {missing[:3]}, unexpected {unexpected[:3]}, other shapes {wrong[:3]}; "
                "set ghn and ghn_kwargs to the checkpoint's configuration (its JSON card lists it)"
            )
        self.ghn.load_state_dict(source)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ghn_config"] = self.ghn.config  # load_ghn(.ckpt) rebuilds the GHN from this
        checkpoint["skipped_steps"] = self.skipped_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_steps = int(checkpoint.get("skipped_steps", 0))

    def on_train_end(self) -> None:
        """Exports the trained GHN as ``<default_root_dir>/ghn.safetensors`` + JSON card (rank zero)."""
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            from pathlib import Path

            from hyperzoo.ghn.checkpoint import save_ghn

            save_ghn(
                self.ghn,
                Path(self.trainer.default_root_dir) / "ghn.safetensors",
                variant=self.hp.ghn,
                global_step=int(self.global_step),
                epoch=int(self.current_epoch),
                skipped_steps=int(self.skipped_steps),
                hparams={k: v for k, v in self.hp.items()},
            )
