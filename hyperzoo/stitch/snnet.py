"""SN-Net: stitchable neural networks over a family of pretrained anchors.

Pan et al., "Stitchable Neural Networks", CVPR 2023. Anchors of one family (here CIFAR ResNets of several depths
or widths, or torchvision ResNets) are cut into blocks. A *configuration* runs the first ``c`` blocks of a front
anchor ``f``, a stitching layer ``S``, then the back anchor ``b`` from block ``j`` on:

    y = head_b(blocks_b[j:](S(blocks_f[:c](x)))),        S(h) = W h + bias  (a 1x1 convolution),

or one anchor alone. Stitching layers are initialised by least squares in closed form (``S`` maps the front
activation onto the back anchor's activation at its entry, :func:`init_stitches_ls`), then everything trains
with one random configuration per step (:class:`~hyperzoo.lightning.stitch_module.StitchModule`). Compute is
counted per configuration on what runs (MACs of the blocks, the stitching layer and the head).

Shapes:
    input ``(B, 3, H, W)`` -> logits ``(B, num_classes)``; block activations ``(B, C, H', W')``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.merge.lstsq import RidgeSolver
from hyperzoo.nets.compute import count_macs

__all__ = ["SNNet", "StitchConfig", "StitchingLayer", "init_stitches_ls", "split_blocks"]


class _Stem(nn.Module):
    """The CIFAR ResNet stem ``relu(bn1(conv1(x)))``."""

    def __init__(self, conv: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        self.conv, self.bn = conv, bn

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class _Head(nn.Module):
    """Global average pooling and the classifier."""

    def __init__(self, fc: nn.Module) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def split_blocks(model: nn.Module) -> tuple[list[nn.Module], nn.Module]:
    """Blocks (stem, then every residual block) and head of a CIFAR ResNet or a torchvision ResNet.

    Raises:
        ConfigError: another architecture (its block structure is not known).
    """
    from torchvision.models.resnet import ResNet

    from hyperzoo.nets.cifar_resnet import CifarResNet

    if isinstance(model, CifarResNet):
        stem: nn.Module = _Stem(model.conv1, model.bn1)
        stages = [model.layer1, model.layer2, model.layer3]
    elif isinstance(model, ResNet):
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    else:
        raise ConfigError(
            f"SN-Net anchors must be CIFAR ResNets or torchvision ResNets, got {type(model).__name__}; "
            "hyperzoo.stitch.split_blocks knows no block structure for it"
        )
    return [stem, *[b for s in stages for b in s]], _Head(model.fc)


class StitchingLayer(nn.Module):
    """A 1x1 convolution from ``c_in`` front channels to ``c_out`` back channels (linear on token inputs).

    Args:
        c_in: channels of the front activation.
        c_out: channels the back anchor expects.

    Shapes:
        ``(B, c_in, H, W) -> (B, c_out, H, W)`` or ``(B, N, c_in) -> (B, N, c_out)``.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.weight = nn.Parameter(torch.empty(c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(c_out))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 4:
            return F.conv2d(x, self.weight[:, :, None, None], self.bias)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.c_in}, {self.c_out}"


@dataclass(frozen=True)
class StitchConfig:
    """One configuration: anchor ``front`` for ``cut`` blocks, then anchor ``back`` from block ``entry`` on.

    An anchor alone is ``front == back`` with ``cut == entry == len(blocks)``... expressed as ``cut = None``.
    """

    front: int
    back: int
    cut: int | None = None
    entry: int | None = None

    @property
    def is_anchor(self) -> bool:
        return self.cut is None

    @property
    def key(self) -> str:
        return f"a{self.front}" if self.is_anchor else f"a{self.front}c{self.cut}-a{self.back}e{self.entry}"


def _shapes(blocks: list[nn.Module], x: Tensor) -> list[tuple[int, ...]]:
    """Activation shape after every block count 0..L (0 = the input)."""
    out = [tuple(x.shape[1:])]
    with torch.no_grad():
        for b in blocks:
            x = b(x)
            out.append(tuple(x.shape[1:]))
    return out


class SNNet(nn.Module):
    """Anchors, stitching layers and the configuration space (nearest anchors, sliding window).

    Args:
        anchors: the pretrained anchors, any order (sorted by MACs here, so anchor 0 is the cheapest).
        window: entries ``j`` considered around the nearest-interpolated block ``round(c * L_b / L_f)``.
        input_size: image side used for shapes and compute.
        pairs: ``"nearest"`` stitches neighbours in the cost order (Fast-to-Slow); ``"all"`` every cheap->costly pair.

    Attributes:
        configs: every configuration, anchors first.
        macs: MACs per image of every configuration.
    """

    def __init__(
        self, anchors: Sequence[nn.Module], window: int = 1, input_size: int = 32, pairs: str = "nearest"
    ) -> None:
        super().__init__()
        if len(anchors) < 2:
            raise ConfigError(f"SN-Net needs at least two anchors, got {len(anchors)}")
        x = torch.zeros(1, 3, input_size, input_size)
        costs = [count_macs(a, x) for a in anchors]
        order = sorted(range(len(anchors)), key=lambda i: costs[i])
        self.anchors = nn.ModuleList([anchors[i] for i in order])
        self.blocks: list[list[nn.Module]] = []
        self.heads: list[nn.Module] = []
        for a in self.anchors:
            blocks, head = split_blocks(a)
            self.blocks.append(blocks)
            self.heads.append(head)
        was = [a.training for a in self.anchors]
        for a in self.anchors:
            a.eval()  # shape probing must not touch BN statistics
        shapes = [_shapes(b, x) for b in self.blocks]
        self.shapes = shapes
        self.stitches = nn.ModuleDict()
        self.configs: list[StitchConfig] = [StitchConfig(i, i) for i in range(len(self.anchors))]
        if pairs == "nearest":
            pair_list = [(i, i + 1) for i in range(len(self.anchors) - 1)]
        elif pairs == "all":
            pair_list = [(i, k) for i in range(len(self.anchors)) for k in range(i + 1, len(self.anchors))]
        else:
            raise ConfigError(f"pairs must be 'nearest' or 'all', got {pairs!r}")
        for f, b in pair_list:
            lf, lb = len(self.blocks[f]), len(self.blocks[b])
            for c in range(1, lf):
                j0 = round(c * lb / lf)
                for j in range(j0 - window, j0 + window + 1):
                    if not 1 <= j < lb or shapes[f][c][1:] != shapes[b][j][1:]:
                        continue  # stitch only where the maps have the same resolution
                    cfg = StitchConfig(f, b, c, j)
                    self.stitches[cfg.key] = StitchingLayer(shapes[f][c][0], shapes[b][j][0])
                    self.configs.append(cfg)
        self.active = 0
        self.input_size = input_size
        self.eval()
        self.macs = [self._macs(k) for k in range(len(self.configs))]
        self.train()
        for a, t in zip(self.anchors, was, strict=True):
            a.train(t)

    def set_config(self, index: int) -> None:
        """Makes configuration ``index`` the one :meth:`forward` runs."""
        if not 0 <= index < len(self.configs):
            raise ConfigError(f"configuration {index} does not exist; SN-Net has {len(self.configs)} (0..)")
        self.active = index

    def run(self, x: Tensor, cfg: StitchConfig) -> Tensor:
        if cfg.is_anchor:
            return self.anchors[cfg.front](x)
        assert cfg.cut is not None and cfg.entry is not None
        for blk in self.blocks[cfg.front][: cfg.cut]:
            x = blk(x)
        x = self.stitches[cfg.key](x)
        for blk in self.blocks[cfg.back][cfg.entry :]:
            x = blk(x)
        return self.heads[cfg.back](x)

    def forward(self, x: Tensor, config: int | None = None) -> Tensor:
        return self.run(x, self.configs[self.active if config is None else config])

    def _macs(self, index: int) -> int:
        x = torch.zeros(1, 3, self.input_size, self.input_size)
        active, self.active = self.active, index
        try:
            return count_macs(self, x)  # the stitching layer's F.conv2d / F.linear included
        finally:
            self.active = active

    def describe(self, index: int) -> dict[str, Any]:
        """The configuration as a dict (with its MACs and FLOPs = 2 MACs)."""
        cfg = self.configs[index]
        return {"id": index, "key": cfg.key, **asdict(cfg), "macs": self.macs[index], "flops": 2 * self.macs[index]}


@torch.no_grad()
def init_stitches_ls(
    snnet: SNNet,
    batches: Iterable[Any],
    num_batches: int = 4,
    ridge: float = 0.0,
    rows_per_batch: int = 8192,
    seed: int = 0,
) -> dict[str, int]:
    """Least-squares initialisation of every stitching layer (closed form, one pass over ``num_batches``).

    For the stitch ``(f, c) -> (b, j)``: ``W, bias = argmin ||W h_f,c + bias - h_b,j||^2 (+ ridge)``, where
    ``h_f,c`` is the front anchor's activation after ``c`` blocks and ``h_b,j`` the back anchor's after ``j``
    blocks, on the same images (pixels are samples). With identical anchors and ``c == j`` the solution is
    the identity: the stitched network reproduces the anchor.

    Returns:
        Rows (pixels x images) each layer was fitted on.
    """
    was = snnet.training
    snnet.eval()
    layers: dict[str, StitchingLayer] = {k: s for k, s in snnet.stitches.items() if isinstance(s, StitchingLayer)}
    solvers = {k: RidgeSolver(s.c_in, s.c_out, bias=True, ridge=ridge) for k, s in layers.items()}
    gen = torch.Generator().manual_seed(seed)
    device = next(snnet.parameters()).device
    try:
        for i, batch in enumerate(batches):
            if i >= num_batches:
                break
            x = (batch[0] if isinstance(batch, (list, tuple)) else batch).to(device)
            acts = []
            for blocks in snnet.blocks:
                h, hs = x, [x]
                for blk in blocks:
                    h = blk(h)
                    hs.append(h)
                acts.append(hs)
            for cfg in snnet.configs:
                if cfg.cut is None or cfg.entry is None:
                    continue
                hf = rearrange(acts[cfg.front][cfg.cut], "b c h w -> (b h w) c")
                hb = rearrange(acts[cfg.back][cfg.entry], "b c h w -> (b h w) c")
                if hf.shape[0] > rows_per_batch:
                    keep = torch.randperm(hf.shape[0], generator=gen)[:rows_per_batch].to(hf.device)
                    hf, hb = hf[keep], hb[keep]
                solvers[cfg.key].update(hf, hb)
    finally:
        snnet.train(was)
    rows = {}
    for key, solver in solvers.items():
        w, b = solver.solve()
        layer = layers[key]
        layer.weight.copy_(w)
        assert b is not None
        layer.bias.copy_(b)
        rows[key] = solver.n
    return rows
