"""DARTS-style cell networks of DeepNets-1M (Knyazev et al., NeurIPS 2021; ppuda ``deepnets1m/net.py``).

A network is a stem, ``n_cells`` cells and a classifier head. Cells at ``n_cells // 3`` and
``2 * n_cells // 3`` are reduction cells: their ops that read the cell inputs stride by 2 and the channel
count is multiplied by ``C_mult``. Every cell reads the outputs of the two previous cells (``s0``, ``s1``),
optionally projected by 1x1 "preprocessing" convs, and concatenates some of its sum nodes as output.

Parameter names equal the reference's (``stem.0.weight``, ``cells.3.preprocess0.conv_1.weight``,
``cells.0._ops.0.op.1.weight``, ``classifier.0.weight``, ...), so published DeepNets-1M graphs and GHN
checkpoints address the same tensors.

Light construction: :func:`build_network` with ``light=True`` (or any construction inside :func:`skip_init`)
allocates parameters without random initialisation. That is the mode for GHN training and dataset
generation, where a hypernetwork supplies every tensor or only the structure matters; it halves construction
time (random init is half the cost of building a DeepNets-1M network on CPU). Building on the ``meta`` device
was measured slower here: every op then goes through a torch-function mode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from hyperzoo.nets.deepnets1m.genotypes import Genotype
from hyperzoo.nets.deepnets1m.ops import (
    FactorizedReduce,
    PosEnc,
    ReLUConvBN,
    Stride,
    Zero,
    build_op,
    conv_stride,
    norm_layer,
)

__all__ = ["NET_ARGS_KEYS", "Cell", "Network", "build_network", "skip_init", "skip_init_active"]

_INIT_LOCK = threading.Lock()
# Layers whose constructors draw random weights; inside skip_init their reset_parameters does nothing (norm
# layers still start from weight 1 / bias 0 under a GHN anyway, and running stats are reset below).
_INIT_CLASSES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)


@contextmanager
def skip_init() -> Iterator[None]:
    """Within the block, Conv2d/Linear/BatchNorm2d/LayerNorm construction leaves parameters uninitialised.

    Parameters hold whatever memory ``torch.empty`` returns until a hypernetwork (or a state dict) writes
    them; BatchNorm running statistics are still reset. The patch is process-wide for the duration of the
    block and serialised by a lock, so only use it around construction.
    """
    with _INIT_LOCK:
        saved = {cls: cls.__dict__.get("reset_parameters") for cls in _INIT_CLASSES}
        try:
            for cls in _INIT_CLASSES:
                if issubclass(cls, nn.modules.batchnorm._NormBase):
                    setattr(cls, "reset_parameters", cls.reset_running_stats)  # noqa: B010
                else:
                    setattr(cls, "reset_parameters", _no_init)  # noqa: B010
            yield
        finally:
            for cls, fn in saved.items():
                if fn is None:
                    delattr(cls, "reset_parameters")
                else:
                    setattr(cls, "reset_parameters", fn)  # noqa: B010


def skip_init_active() -> bool:
    """Whether a :func:`skip_init` block is running (it does not nest: check before entering one)."""
    return _INIT_LOCK.locked()


def _no_init(self: nn.Module) -> None:
    pass


def _is_none(module: nn.Module) -> bool:
    """Whether an op contributes nothing: the ``none`` op, or a module whose weight a GHN set to None.

    The reference GHN sets the parameters of modules absent from the computation graph (dead ends) to
    ``None``; skipping them keeps the forward pass valid.
    """
    if isinstance(module, Zero):
        return True
    return any("weight" in m._parameters and m._parameters["weight"] is None for m in module.modules())


class Cell(nn.Module):
    """One DARTS cell.

    Args:
        genotype: the cell genotypes of the network.
        C_prev_prev: channels of ``s0`` (output of the cell before the previous one).
        C_prev: channels of ``s1`` (output of the previous cell).
        C_in: channels entering the ops that read ``s0``/``s1`` (``C_out`` with preprocessing).
        C_out: channels of every op output.
        reduction: whether this is a reduction cell.
        reduction_prev: whether the previous cell (or an ImageNet-style stem) halved the resolution, so ``s0``
            must be reduced too.
        norm: normalization, see :func:`~hyperzoo.nets.deepnets1m.ops.norm_layer`.
        preproc: project ``s0``/``s1`` to ``C_out`` channels with ReLU-1x1 conv-norm.
        is_vit: ViT networks never change the resolution inside cells.
        cell_ind: position of the cell in the network.

    Shapes:
        ``s0: (B, C_prev_prev, H', W')``, ``s1: (B, C_prev, H, W)`` ->
        ``(B, len(concat) * C_out, H / r, W / r)`` with ``r = 2`` in reduction cells.
    """

    def __init__(
        self,
        genotype: Genotype,
        C_prev_prev: int,
        C_prev: int,
        C_in: int,
        C_out: int,
        reduction: bool,
        reduction_prev: bool,
        norm: str | None = "bn",
        preproc: bool = True,
        is_vit: bool = False,
        cell_ind: int = 0,
    ) -> None:
        super().__init__()
        self._is_vit = is_vit
        self._cell_ind = cell_ind
        self.genotype = genotype
        self.preprocess0: nn.Module
        self.preprocess1: nn.Module
        if preproc:
            if reduction_prev and not is_vit:
                self.preprocess0 = FactorizedReduce(C_prev_prev, C_out, norm=norm)
            else:
                self.preprocess0 = ReLUConvBN(C_prev_prev, C_out, norm=norm)
            self.preprocess1 = ReLUConvBN(C_prev, C_out, norm=norm)
        else:
            self.preprocess0 = Stride(2) if reduction_prev and not is_vit else nn.Identity()
            self.preprocess1 = nn.Identity()

        gene = genotype.reduce if reduction else genotype.normal
        self._concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self._indices = [src for _, src in gene]
        self._steps = len(gene) // 2
        self.multiplier = len(self._concat)
        self._ops = nn.ModuleList()
        for name, src in gene:
            stride = 2 if reduction and src < 2 and not is_vit else 1
            self._ops.append(build_op(name, C_in if src <= 1 else C_out, C_out, stride, norm))

    def forward(self, s0: Tensor | None, s1: Tensor | None) -> Tensor | None:
        s0 = None if s0 is None or _is_none(self.preprocess0) else self.preprocess0(s0)
        s1 = None if s1 is None or _is_none(self.preprocess1) else self.preprocess1(s1)
        states: list[Tensor | None] = [s0, s1]
        for i in range(self._steps):
            s = None
            for j in (2 * i, 2 * i + 1):
                op, h = self._ops[j], states[self._indices[j]]
                # `none` ops and missing inputs contribute nothing, so they stay out of the autograd graph
                if h is None or _is_none(op):
                    continue
                h = op(h)
                s = h if s is None else s + h
            states.append(s)

        outputs = [states[i] for i in self._concat]
        if any(o is None for o in outputs):
            # sparse cells: fill missing states with zeros shaped like a present one to keep channel counts
            present = next((o for o in outputs if o is not None), None)
            if present is None:
                return None
            outputs = [present * 0 if o is None else o for o in outputs]
        return torch.cat([o for o in outputs if o is not None], dim=1)


class Network(nn.Module):
    """A DeepNets-1M network: stem, ``n_cells`` DARTS cells, classifier.

    Args:
        C: base channel count (32 for DeepNets-1M evaluation, 16 in the DARTS conformance model).
        num_classes: classifier outputs.
        genotype: the cell genotypes (a :class:`Genotype` or its dict form).
        n_cells: number of cells.
        ks: kernel size of the first stem conv.
        is_imagenet_input: stem strides and head for 224x224 inputs instead of 32x32.
        stem_pool: max pooling after the simple stem (``stem_type=0``).
        stem_type: 0 = one conv-norm (3x the channels with preprocessing on 32x32 inputs); 1 = the
            ImageNet-style DARTS stem (two conv blocks ``stem0``, ``stem1``). ViT genotypes always get the
            patchify stem ``stem0`` + :class:`PosEnc` instead.
        is_vit: override the ViT detection (any ``msa`` op).
        norm: normalization, see :func:`~hyperzoo.nets.deepnets1m.ops.norm_layer`.
        preproc: 1x1 preprocessing convs at cell inputs (required if a cell has more than one output state
            or ``C_mult > 1``).
        C_mult: channel multiplier at each reduction cell.
        fc_layers: linear layers in the head (0 or 1: one linear classifier).
        fc_dim: hidden units of a multi-layer head.
        glob_avg: global average pooling before the head; otherwise the feature map is flattened.
        auxiliary: the DARTS auxiliary head (unused by GHNs); in training mode forward then returns
            ``(logits, aux_logits)``.

    Shapes:
        input ``(B, 3, 32, 32)`` (``(B, 3, 224, 224)`` with ``is_imagenet_input``) -> logits
        ``(B, num_classes)``.
    """

    def __init__(
        self,
        C: int,
        num_classes: int,
        genotype: Genotype | Mapping[str, Any],
        n_cells: int,
        ks: int = 3,
        is_imagenet_input: bool = True,
        stem_pool: bool = False,
        stem_type: int = 0,
        is_vit: bool | None = None,
        norm: str | None = "bn-track",
        preproc: bool = True,
        C_mult: int = 2,
        fc_layers: int = 0,
        fc_dim: int = 0,
        glob_avg: bool = True,
        auxiliary: bool = False,
    ) -> None:
        super().__init__()
        genotype = Genotype.from_dict(genotype)
        self.genotype = genotype
        # the input side a graph builder should feed (graph_from_module reads expected_input_size)
        self.expected_input_size = self.expected_input_sz = 224 if is_imagenet_input else 32
        self._is_vit = genotype.is_vit if is_vit is None else is_vit
        self._stem_type = stem_type
        self._auxiliary = auxiliary
        steps = len(genotype.normal_concat)  # number of states concatenated into a cell output
        if (steps > 1 or C_mult > 1) and not preproc:
            raise ValueError("preproc=True is required when a cell concatenates >1 states or C_mult > 1")
        if stem_type not in (0, 1):
            raise ValueError(f"stem_type must be 0 (simple) or 1 (ImageNet-style), got {stem_type}")

        C_stem = self._build_stem(C, ks, is_imagenet_input, stem_pool, stem_type, norm, preproc)
        C_prev = self._build_cells(
            genotype, C, C_stem, n_cells, num_classes, is_imagenet_input, stem_pool, norm, preproc, C_mult, auxiliary
        )
        self._glob_avg = glob_avg
        if glob_avg:
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
        else:
            # VGG-style head: flatten the final feature map, whose size the stem and 2 reductions fix
            small = stem_type == 1 or stem_pool
            side = (7 if small else 14) if is_imagenet_input else (4 if small else 8)
            C_prev *= side**2
        self.classifier = _build_head(C_prev, num_classes, fc_layers, fc_dim)

    def _build_stem(
        self,
        C: int,
        ks: int,
        is_imagenet_input: bool,
        stem_pool: bool,
        stem_type: int,
        norm: str | None,
        preproc: bool,
    ) -> int:
        """Registers the stem modules (see the class docstring) and returns the channels it outputs."""
        self.stem0: nn.Module
        if self._is_vit:
            self.stem0 = conv_stride(3, C, 16 if is_imagenet_input else 3)
            self.pos_enc = PosEnc(C, 14 if is_imagenet_input else 11)
        elif stem_type == 0:
            C_stem = C * (3 if preproc and not is_imagenet_input else 1)
            self.stem = nn.Sequential(
                nn.Conv2d(3, C_stem, ks, stride=4 if is_imagenet_input else 1, padding=ks // 2, bias=False),
                norm_layer(norm, C_stem),
                nn.MaxPool2d(3, stride=2, padding=1) if stem_pool else nn.Identity(),
            )
            return C_stem
        else:
            s = 2 if is_imagenet_input else 1
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, C // 2, ks, stride=s, padding=ks // 2, bias=False),
                norm_layer(norm, C // 2),
                nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=s, padding=1, bias=False),
                norm_layer(norm, C),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=True),
                nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
                norm_layer(norm, C),
            )
        return C

    def _build_cells(
        self,
        genotype: Genotype,
        C: int,
        C_stem: int,
        n_cells: int,
        num_classes: int,
        is_imagenet_input: bool,
        stem_pool: bool,
        norm: str | None,
        preproc: bool,
        C_mult: int,
        auxiliary: bool,
    ) -> int:
        """Registers ``self.cells`` (and the auxiliary head after its cell); returns the last cell's channels."""
        steps = len(genotype.normal_concat)
        C_prev_prev = C_prev = C_stem
        C_curr = C
        self._n_cells = n_cells
        reductions = {n_cells // 3, 2 * n_cells // 3} - {0}
        self._auxiliary_cell_ind = 2 * n_cells // 3
        self.cells = nn.ModuleList()
        reduction_prev = self._stem_type == 1
        for cell_ind in range(n_cells):
            reduction = cell_ind in reductions
            if reduction:
                C_curr *= C_mult
            # without preprocessing, a single-output cell before a reduction must already produce the
            # widened channels the reduction cell's ops expect
            widen_next = cell_ind + 1 in reductions and steps == 1 and not preproc
            cell = Cell(
                genotype,
                C_prev_prev,
                C_prev,
                C_in=C_curr if preproc else C_prev,
                C_out=C_curr * (C_mult if widen_next else 1),
                reduction=reduction,
                reduction_prev=reduction_prev,
                norm=norm,
                preproc=preproc,
                is_vit=self._is_vit,
                cell_ind=cell_ind,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if auxiliary and cell_ind == self._auxiliary_cell_ind:
                self.auxiliary_head = _AuxiliaryHead(
                    C_prev, num_classes, norm, is_imagenet_input, small=self._stem_type == 1 or stem_pool
                )
        return C_prev

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor | None]:
        if self._is_vit:
            s0 = s1 = self.pos_enc(self.stem0(x))
        elif self._stem_type == 1:
            s0 = self.stem0(x)
            s1 = None if _is_none(self.stem1) else self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        aux = None
        for cell_ind, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if self._auxiliary and self.training and cell_ind == self._auxiliary_cell_ind:
                vit_cifar = self._is_vit and self.expected_input_sz == 32  # ViT cells keep the resolution
                aux = self.auxiliary_head(nn.functional.adaptive_avg_pool2d(s1, 8) if vit_cifar else s1)
        if s1 is None:
            raise ValueError("invalid network: every path to the output goes through a `none` op")
        out = self.global_pooling(s1) if self._glob_avg else s1
        logits = self.classifier(out.flatten(1))
        return (logits, aux) if self._auxiliary and self.training else logits


def _build_head(C_in: int, num_classes: int, fc_layers: int, fc_dim: int) -> nn.Sequential:
    """The classifier: one linear layer, or ``fc_layers`` linear layers of ``fc_dim`` hidden units."""
    head: list[nn.Module] = [nn.Linear(C_in, fc_dim if fc_layers > 1 else num_classes)]
    for i in range(fc_layers - 1):
        if fc_dim <= 0:
            raise ValueError(f"fc_layers={fc_layers} needs fc_dim > 0")
        last = i == fc_layers - 2
        head += [
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(fc_dim, num_classes if last else fc_dim),
        ]
    return nn.Sequential(*head)


class _AuxiliaryHead(nn.Module):
    """The DARTS auxiliary classifier (training only)."""

    def __init__(self, C: int, num_classes: int, norm: str | None, imagenet: bool, small: bool) -> None:
        super().__init__()
        size = 5 if imagenet or not small else 2
        stride = 2 if imagenet else min(size, 3)
        layers: list[nn.Module] = [
            nn.ReLU(inplace=True),
            nn.AvgPool2d(size, stride=stride, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            norm_layer(norm, 128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        # the reference's ImageNet head has no norm here (a typo it keeps for consistency with its paper)
        layers += [nn.ReLU(inplace=True)] if imagenet else [norm_layer(norm, 768), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


# Keys of a DeepNets-1M ``net_args`` dict that are Network arguments (besides C, num_classes).
NET_ARGS_KEYS = (
    "genotype",
    "n_cells",
    "ks",
    "stem_type",
    "stem_pool",
    "norm",
    "preproc",
    "C_mult",
    "fc_layers",
    "fc_dim",
    "glob_avg",
)


def build_network(
    net_args: Mapping[str, Any],
    C: int | None = None,
    num_classes: int = 10,
    is_imagenet_input: bool = False,
    light: bool = False,
    device: torch.device | str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Rebuilds a network from its DeepNets-1M ``net_args``.

    Args:
        net_args: a sampled or stored ``net_args`` dict. A dict with a ``"model"`` key names a registered
            model instead (the ``predefined`` split's ResNet-50), built with ``adapt_cifar`` on 32x32 inputs.
        C: base width; default ``net_args["C"]`` if present, else 32 (the DeepNets-1M evaluation width).
        num_classes: classifier outputs.
        is_imagenet_input: build the 224x224 variant.
        light: skip random initialisation (see :func:`skip_init`); parameters hold uninitialised memory
            until a hypernetwork writes them.
        device: build directly on this device (``"meta"`` for a structure-only network).
        **overrides: other :class:`Network` arguments, e.g. ``norm="bn"``.
    """
    if "model" in net_args:
        from hyperzoo.nets.factory import create_model

        def make() -> nn.Module:
            return create_model(net_args["model"], num_classes=num_classes, adapt_cifar=not is_imagenet_input)

    else:
        kwargs = {k: net_args[k] for k in NET_ARGS_KEYS if k in net_args}
        norm = kwargs.get("norm", "bn-track")
        kwargs["norm"] = None if norm in (None, "", "none") else norm
        kwargs.update(overrides)
        width = C if C is not None else int(net_args.get("C", 32))

        def make() -> nn.Module:
            return Network(width, num_classes, is_imagenet_input=is_imagenet_input, **kwargs)

    with torch.device(device) if device is not None else _nullcontext():
        if light:
            with skip_init():
                return make()
        return make()


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield
