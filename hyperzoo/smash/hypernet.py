"""The SMASH hypernetwork: a weight-normalized, fully convolutional DenseNet over the weight-coordinate grid.

Brock et al., ICLR 2018, Sec. 3.1 / Appendix: the input is the architecture encoding ``c`` (``[C, k, S]``, see
:mod:`hyperzoo.smash.space`) with one channel of Gaussian noise ``z`` prepended; the output has ``N * N`` channels on
the same ``k x S`` grid, and cell ``(j, s)`` becomes the ``N x N`` block (output group ``j``, input slice ``s``) of the
1x1 weight matrix ``W = [k N, S N]``. The grid is never downsampled, so each weight block is predicted from the
description of the op that uses it and its neighbours along the input axis.

Every convolution is weight-normalized: ``y = conv(x, a * w / ||w||_F)`` with the whole-tensor Frobenius norm of
SMASH's "simple weightnorm" and no bias. hyperzoo adds a fixed (not learned) gain ``a = sqrt(C_out)`` so the
activation scale stays constant with depth instead of shrinking by ``1 / C_out`` per layer.

Axis legend: ``b`` batch, ``o``/``i`` output/input channels within a block (``N`` each), ``k`` rows, ``s`` columns.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.specs import ShapeMismatchError
from hyperzoo.smash.space import SMASHSpace

__all__ = ["SMASHHypernet", "WNConv2d"]


class WNConv2d(nn.Module):
    """``conv(x, sqrt(C_out) * w / ||w||_F)``, no bias (SMASH's simple weight norm with a fixed gain).

    Args:
        in_channels, out_channels: channels.
        kernel: odd kernel size (``same`` padding).

    Shapes:
        ``[b, in, H, W]`` -> ``[b, out, H, W]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel, kernel))
        nn.init.orthogonal_(self.weight)
        self.gain = math.sqrt(out_channels)
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.gain * self.weight / self.weight.norm(), padding=self.padding)


class SMASHHypernet(nn.Module):
    """Encoding (+ noise) ``[b, 1 + C, k, S]`` -> 1x1 weight matrix ``[b, k N, S N]``.

    Update rule: trained jointly with the shared weights of :class:`~hyperzoo.smash.network.SMASHNet` by the
    classification loss of a random architecture per batch (:class:`~hyperzoo.lightning.smash_module.SMASHModule`).

    Args:
        space: the architecture space (sets ``C``, ``k``, ``S`` and ``N``).
        width: channels of the stem conv.
        growth: channels added by each dense layer.
        depth: dense layers (3x3, LeakyReLU(0.02) before each conv).
        noise: prepend a channel of ``N(0, 1)`` noise (SMASH); False prepends zeros (a deterministic hypernet).

    Shapes:
        ``c``: ``[C, k, S]`` or ``[b, C, k, S]`` -> ``[k N, S N]`` or ``[b, k N, S N]``.
    """

    def __init__(
        self, space: SMASHSpace, width: int = 32, growth: int = 16, depth: int = 4, noise: bool = True
    ) -> None:
        super().__init__()
        if width < 1 or growth < 1 or depth < 0:
            raise ConfigError(
                f"SMASHHypernet: width, growth must be >= 1 and depth >= 0, got {width}, {growth}, {depth}"
            )
        self.space, self.noise = space, bool(noise)
        self.config = {"width": width, "growth": growth, "depth": depth, "noise": noise}
        self.stem = WNConv2d(1 + space.encoding_channels, width, 3)
        self.dense = nn.ModuleList([WNConv2d(width + i * growth, growth, 3) for i in range(depth)])
        self.out = WNConv2d(width + depth * growth, space.base * space.base, 1)

    def forward(self, c: Tensor, generator: torch.Generator | None = None) -> Tensor:
        single = c.dim() == 3
        c = c.unsqueeze(0) if single else c
        if tuple(c.shape[1:]) != self.space.encoding_shape:
            raise ShapeMismatchError(
                f"SMASHHypernet: encoding has shape {tuple(c.shape)}, the space needs [b, "
                f"{', '.join(map(str, self.space.encoding_shape))}]"
            )
        if self.noise:
            z = torch.randn(c.shape[0], 1, *c.shape[2:], generator=generator, device=c.device if generator is None
                            else generator.device).to(c)  # fmt: skip
        else:
            z = torch.zeros_like(c[:, :1])
        h = self.stem(torch.cat([z, c], dim=1))
        for layer in self.dense:
            h = torch.cat([h, layer(F.leaky_relu(h, 0.02))], dim=1)
        w = self.out(F.leaky_relu(h, 0.02))  # [b, N*N, k, S]
        n = self.space.base
        w = rearrange(w, "b (o i) k s -> b (k o) (s i)", o=n, i=n)
        return w[0] if single else w
