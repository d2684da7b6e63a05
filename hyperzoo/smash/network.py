"""The networks of the SMASH space: the one-shot network (generated 1x1 weights) and a derived, normal network.

:class:`SMASHNet` holds every parameter that is *not* generated, at maximum size, shared by all architectures, and
runs any :class:`~hyperzoo.smash.space.Architecture` with the hypernet's 1x1 weight matrix (SMASH Sec. 3): the stem
conv, one ``kxk`` conv tensor per block (each op slices ``bank_size * N`` outputs, ``units * N / groups`` inputs and
a centred ``kernel x kernel`` window from it), the transition 1x1 convs and the classifier (sliced to the block
output width). Normalization is parameter-free batch normalization with batch statistics (every slice of every
architecture would need its own statistics otherwise).

:class:`DerivedNet` is one architecture as an ordinary network with its own weights and standard BatchNorm
layers, trained from scratch to measure how well SMASH scores rank architectures.

Per op (both networks): ``t = W1x1 * relu(bn(cat(read banks)))``, ``t = Wkxk * relu(bn(t))``, then ``t`` is added
into every write bank. The generated 1x1 weight of an op is normalized to unit Frobenius norm (SMASH's simple
weight norm); the BN that follows makes its scale irrelevant.

Axis legend: ``o`` output channels, ``i`` input channels of a 1x1 convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.specs import ShapeMismatchError
from hyperzoo.smash.space import Architecture, Op, SMASHSpace

__all__ = ["DerivedNet", "SMASHNet", "op_weight"]


def _bn(x: Tensor) -> Tensor:
    return F.batch_norm(x, None, None, training=True, eps=1e-5)


def op_weight(w1x1: Tensor, op: Op, span: tuple[int, int], base: int) -> Tensor:
    """The normalized 1x1 weight ``[units * N, nch, 1, 1]`` of one op from the generated matrix ``w1x1``."""
    start, n = span
    w = w1x1[: op.units * base, start * base : (start + n) * base]
    w = w / w.norm().clamp_min(1e-12)
    return rearrange(w, "o i -> o i 1 1")


def _padding(op: Op) -> int:
    return op.dilation * (op.kernel - 1) // 2


class SMASHNet(nn.Module):
    """The one-shot network of a :class:`SMASHSpace` (shared, sliced weights; 1x1 weights supplied per call).

    Args:
        space: the architecture space.
        num_classes: classifier outputs.
        in_channels: image channels.

    Shapes:
        ``x``: ``[n, in_channels, H, W]``; ``w1x1``: ``[max_units * N, columns * N]``; output ``[n, num_classes]``.
    """

    def __init__(self, space: SMASHSpace, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.space, self.num_classes = space, int(num_classes)
        n, bmax = space.base, space.max_bank_size
        kmax, width = space.max_kernel, space.max_banks * space.max_bank_size * space.base
        self.stem = nn.Parameter(torch.empty(bmax * n, in_channels, 3, 3))
        self.convs = nn.ParameterList(
            [nn.Parameter(torch.empty(bmax * n, space.max_units * n, kmax, kmax)) for _ in range(space.blocks)]
        )
        self.transitions = nn.ParameterList(
            [nn.Parameter(torch.empty(bmax * n, width, 1, 1)) for _ in range(space.blocks - 1)]
        )
        self.fc = nn.Linear(width, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in [self.stem, *self.convs, *self.transitions]:
            nn.init.kaiming_normal_(p, nonlinearity="relu")
        nn.init.normal_(self.fc.weight, std=1.0 / math.sqrt(self.fc.in_features))
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor, arch: Architecture, w1x1: Tensor) -> Tensor:
        sp = self.space
        expected = (sp.max_units * sp.base, sp.columns * sp.base)
        if tuple(w1x1.shape) != expected:
            raise ShapeMismatchError(
                f"SMASHNet: generated 1x1 weight matrix 'w1x1' has shape {tuple(w1x1.shape)}, the space needs "
                f"{expected}; was the hypernet built for another space?"
            )
        if len(arch.blocks) != sp.blocks:
            raise ConfigError(f"SMASHNet: architecture has {len(arch.blocks)} blocks, the space has {sp.blocks}")
        n, kmax = sp.base, sp.max_kernel
        h = F.conv2d(x, self.stem[: arch.blocks[0].bank_size * n], padding=1)
        for b, (block, spans) in enumerate(zip(arch.blocks, sp.column_layout(arch))):
            bank_ch = block.bank_size * n
            banks: list[Tensor | None] = [h] + [None] * (sp.max_banks - 1)
            for op, span in zip(block.ops, spans):
                inp = torch.cat([banks[r] for r in op.reads], dim=1)  # type: ignore[misc]
                t = F.conv2d(F.relu(_bn(inp)), op_weight(w1x1, op, span, n))
                off = (kmax - op.kernel) // 2
                wk = self.convs[b][:bank_ch, : op.units * n // op.groups, off : off + op.kernel, off : off + op.kernel]
                t = F.conv2d(F.relu(_bn(t)), wk, padding=_padding(op), dilation=op.dilation, groups=op.groups)
                for w in op.writes:
                    cur = banks[w]
                    banks[w] = t if cur is None else cur + t
            h = torch.cat([bk for bk in banks if bk is not None], dim=1)
            if b + 1 < sp.blocks:
                out_ch = arch.blocks[b + 1].bank_size * n
                h = F.avg_pool2d(F.conv2d(F.relu(_bn(h)), self.transitions[b][:out_ch, : h.shape[1]]), 2)
        h = F.relu(_bn(h)).mean(dim=(2, 3))
        return F.linear(h, self.fc.weight[:, : h.shape[1]], self.fc.bias)


class _DerivedOp(nn.Module):
    def __init__(self, op: Op, in_ch: int, bank_ch: int, base: int) -> None:
        super().__init__()
        self.op = op
        mid = op.units * base
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(
            mid, bank_ch, op.kernel, padding=_padding(op), dilation=op.dilation, groups=op.groups, bias=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))


class DerivedNet(nn.Module):
    """One architecture of the space as a normal network (own weights, standard BatchNorm), trained from scratch.

    Args:
        space: the architecture space.
        arch: the architecture (validated).
        num_classes: classifier outputs.
        in_channels: image channels.

    Shapes:
        ``[n, in_channels, H, W]`` -> ``[n, num_classes]``.
    """

    def __init__(self, space: SMASHSpace, arch: Architecture, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        space.validate(arch)
        self.space, self.arch = space, arch
        n = space.base
        self.stem = nn.Conv2d(in_channels, arch.blocks[0].bank_size * n, 3, padding=1, bias=False)
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for b, block in enumerate(arch.blocks):
            bank_ch = block.bank_size * n
            self.blocks.append(nn.ModuleList([_DerivedOp(op, len(op.reads) * bank_ch, bank_ch, n) for op in block.ops]))
            out_ch = block.num_banks * bank_ch
            if b + 1 < space.blocks:
                nxt = arch.blocks[b + 1].bank_size * n
                self.transitions.append(
                    nn.Sequential(nn.BatchNorm2d(out_ch), nn.ReLU(), nn.Conv2d(out_ch, nxt, 1, bias=False))
                )
        self.head_bn = nn.BatchNorm2d(out_ch)
        self.fc = nn.Linear(out_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        for b, ops in enumerate(self.blocks):
            banks: list[Tensor | None] = [h] + [None] * (self.space.max_banks - 1)
            for mod in ops:  # type: ignore[attr-defined]  # a ModuleList of _DerivedOp
                op = mod.op
                t = mod(torch.cat([banks[r] for r in op.reads], dim=1))  # type: ignore[misc]
                for w in op.writes:
                    cur = banks[w]
                    banks[w] = t if cur is None else cur + t
            h = torch.cat([bk for bk in banks if bk is not None], dim=1)
            if b < len(self.transitions):
                h = F.avg_pool2d(self.transitions[b](h), 2)
        h = F.relu(self.head_bn(h)).mean(dim=(2, 3))
        return self.fc(h)
