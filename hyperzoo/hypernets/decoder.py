"""Decoding an embedding into a tensor of any shape: the convolutional decoder of graph hypernetworks and tiling.

:class:`ConvDecoder` (GHN-2, Knyazev et al., 2021, Sec. 4; ``ppuda/ghn/nn.py``) decodes an embedding into a fixed
maximum-size block ``(o, i, s, s)``; :func:`tile_to_shape` (or :func:`tile_into`, in place) crops or repeats the
block to a parameter's real shape. :class:`~hyperzoo.ghn.GHN` decodes its node embeddings with them and
:class:`~hyperzoo.hypernets.ghn_decoder.GHNDecoderHypernet` its per-tensor embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvDecoder", "tile_into", "tile_to_shape"]


class ConvDecoder(nn.Module):
    """``fc -> ReLU -> reshape (N, c1, s, s) -> 1x1 conv -> ReLU -> 1x1 conv -> reshape (N, o, i, s, s)``.

    Args:
        hid: node feature size.
        channels: hidden widths ``(c1, c2)`` of the two 1x1 convolutions (``(4 hid, 8 hid)`` in GHN-2).
        max_shape: ``(o, i, s, s)``, the largest tensor decoded.
        num_classes: rows of the classifier-weight head.
    """

    def __init__(
        self, hid: int, channels: tuple[int, int], max_shape: tuple[int, int, int, int], num_classes: int
    ) -> None:
        super().__init__()
        o, i, sh, sw = (int(v) for v in max_shape)
        self.max_shape: tuple[int, int, int, int] = (o, i, sh, sw)
        self.fc = nn.Linear(hid, channels[0] * sh * sw)
        self.conv1 = nn.Conv2d(channels[0], channels[1], 1)
        self.conv2 = nn.Conv2d(channels[1], o * i, 1)
        self.class_conv = nn.Conv2d(o, num_classes, 1)  # applied after a ReLU to the top-left kernel position

    def forward(self, x: Tensor, kernel: tuple[int, int] = (1, 1), class_pred: bool = False) -> Tensor:
        """Decodes ``x`` ``[N, hid]``.

        Args:
            x: node embeddings.
            kernel: spatial size ``(h, w)`` needed; the decoded kernel is the top-left ``min(h, s) x min(w, s)`` crop
                (the 1x1 convolutions act per position, so only that crop is computed).
            class_pred: decode a classifier weight instead: ``[N, num_classes, i]``.

        Returns:
            ``[N, o, i, min(h, s), min(w, s)]``, or ``[N, num_classes, i]`` with ``class_pred``.
        """
        n = x.shape[0]
        o, i, sh, sw = self.max_shape
        kh, kw = (1, 1) if class_pred else (min(kernel[0], sh), min(kernel[1], sw))
        # Only the fc rows of the kept positions: fc output is laid out (c1, s, s).
        rows = torch.arange(self.fc.out_features, device=x.device).view(-1, sh, sw)[:, :kh, :kw].reshape(-1)
        z = F.relu(F.linear(x, self.fc.weight[rows], self.fc.bias[rows])).view(n, -1, kh * kw).transpose(1, 2)
        # The 1x1 convolutions as products over all positions at once (~2x faster than conv2d on CPU for these
        # shapes; the same arithmetic up to rounding); the result is a strided view [n, o, i, kh, kw].
        c2, c1 = self.conv1.weight.shape[:2]
        z = F.relu(F.linear(z, self.conv1.weight.view(c2, c1), self.conv1.bias))
        z = F.linear(z, self.conv2.weight.view(o * i, c2), self.conv2.bias).transpose(1, 2).view(n, o, i, kh, kw)
        if class_pred:
            return self.class_conv(F.relu(z[:, :, :, :, 0]))[:, :, :, 0]
        return z


def tile_to_shape(w: Tensor, shape: tuple[int, ...] | torch.Size, centre: bool = False) -> Tensor:
    """Fits a predicted tensor to ``shape``: crop every dimension, repeat where the target is larger, crop again.

    ``w`` must have the rank of ``shape``. A ``512 x 256 x 3 x 3`` weight from a ``64 x 64 x 3 x 3`` prediction is that
    block repeated 8 x 4 times (the reference's ``_tile_params``). Spatial dimensions larger than the prediction are
    repeated the same way (the reference GHN-2 cannot predict such kernels; GHN-3's decoder interpolates them before
    they get here).

    The repetition is one copy from a broadcast view of the block (the values of ``w.repeat``, about 3x faster on
    CPU); :func:`tile_into` writes the same values into an existing tensor without allocating.

    Args:
        w: the prediction.
        shape: the target shape.
        centre: crop spatial dimensions (2 and 3) around the centre instead of from the top-left (GHN-3).
    """
    t = tuple(int(v) for v in shape)
    w = _crop(w, t, centre)
    reps = [-(-a // b) for a, b in zip(t, w.shape)]
    if all(r == 1 for r in reps):
        return w
    tiled = _broadcast_tiles(w, reps).reshape([r * b for r, b in zip(reps, w.shape)])
    if tuple(tiled.shape) != t:
        tiled = tiled[tuple(slice(0, v) for v in t)]
    return tiled


def tile_into(out: Tensor, w: Tensor, centre: bool = False) -> Tensor:
    """Writes ``tile_to_shape(w, out.shape, centre)`` into ``out`` in one pass, without a full-size temporary.

    Returns ``out``. Where ``out`` is not contiguous or a dimension is not a whole number of blocks, the tiled tensor
    is built first and copied.
    """
    t = tuple(out.shape)
    w = _crop(w, t, centre)
    reps = [-(-a // b) for a, b in zip(t, w.shape)]
    if all(r * b == a for r, b, a in zip(reps, w.shape, t)) and out.is_contiguous():
        out.view([v for r, b in zip(reps, w.shape) for v in (r, b)]).copy_(_broadcast_tiles(w, reps))
    else:
        out.copy_(tile_to_shape(w, t, centre))
    return out


def _crop(w: Tensor, t: tuple[int, ...], centre: bool) -> Tensor:
    """``w`` cropped to at most ``t`` in every dimension (spatial dimensions around the centre with ``centre``)."""
    if w.dim() != len(t):
        raise ValueError(f"rank mismatch: predicted {tuple(w.shape)} for target {t}")
    if all(b <= a for a, b in zip(t, w.shape)):
        return w
    index = []
    for d, (a, b) in enumerate(zip(t, w.shape)):
        start = (b - a) // 2 if (centre and d >= 2 and b > a) else 0
        index.append(slice(start, start + min(a, b)))
    return w[tuple(index)]


def _broadcast_tiles(w: Tensor, reps: Sequence[int]) -> Tensor:
    """``w`` ``[b0, b1, ...]`` as a stride-0 view ``[r0, b0, r1, b1, ...]``: the block repeated, nothing copied."""
    view = w.reshape([v for b in w.shape for v in (1, b)])
    return view.expand([v for r, b in zip(reps, w.shape) for v in (r, b)])
