"""GHN-3's parameter decoder and centred tiling (``ghn3/nn.py``: ``ConvDecoder3``, ``GHN3._tile_params``).

The decoder is GHN-2's :class:`~hyperzoo.ghn.decoder.ConvDecoder` with three changes from the GHN-3 reference:

- the two per-position 1x1 convolutions and the classifier head are ``nn.Linear`` layers acting on the channel axis
  (same parameter count; the reference did this to avoid CUDA errors on A100);
- a ``k x k`` kernel is the **centre** crop of the ``s x s`` prediction instead of the top-left one;
- kernels larger than ``s`` are the full ``s x s`` prediction bilinearly interpolated to the requested size, and
  the classifier weight is read at the centre position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvDecoder3", "centre_slice", "tile_pos_embedding", "tile_to_shape_centered"]


def centre_slice(size: int, k: int) -> slice:
    """The ``min(k, size)`` consecutive indices of ``range(size)`` centred on ``size // 2``.

    The window is ``[c - k // 2, c + ceil(k / 2))`` with ``c = size // 2`` (the reference's offsets); for an even
    ``k`` the extra index falls before the centre, e.g. ``size = 16``: ``k = 1 -> [8]``, ``k = 3 -> [7, 8, 9]``,
    ``k = 4 -> [6, 7, 8, 9]``.
    """
    k = min(k, size)
    c = size // 2
    return slice(c - k // 2, c + (k + 1) // 2)


class ConvDecoder3(nn.Module):
    """``fc -> ReLU -> (N, s, s, c1) -> Linear -> ReLU -> Linear -> (N, o, i, s, s)``, decoded where needed.

    For a node embedding ``x``: ``z = ReLU(W_fc x + b_fc)`` laid out as ``(c1, s, s)``; at every spatial position
    ``p`` the channel vector ``z[:, p]`` goes through ``Linear(c1, c2) -> ReLU -> Linear(c2, o i)``, giving the
    ``o x i`` weight slice at ``p``. Since every step after ``fc`` acts per position, only the fc rows of the kept
    positions are computed.

    Init tweak of the reference (``GHN3._init_small``): the last layer (``conv2``) and the classifier head have their
    default-initialised weights divided by 5 and their biases set to 0 ("to help avoid nan loss").

    Module names (``fc``, ``conv1``, ``conv2``, ``class_conv``) follow :class:`~hyperzoo.ghn.decoder.ConvDecoder`, so
    the reference keys map the same way (``fc.0``, ``conv.0``, ``conv.2``, ``class_layer_predictor.1``); the
    reference's 1x1-conv checkpoints are squeezed to 2-D to load into the linear layers.

    Args:
        hid: node feature size.
        channels: hidden widths ``(c1, c2)`` (``(4 hid, 8 hid)`` in GHN-3).
        max_shape: ``(o, i, s, s)``, the largest tensor decoded (``(hid, hid, 16, 16)`` in GHN-3).
        num_classes: rows of the classifier-weight head.
    """

    def __init__(
        self, hid: int, channels: tuple[int, int], max_shape: tuple[int, int, int, int], num_classes: int
    ) -> None:
        super().__init__()
        o, i, sh, sw = (int(v) for v in max_shape)
        self.max_shape: tuple[int, int, int, int] = (o, i, sh, sw)
        self.fc = nn.Linear(hid, channels[0] * sh * sw)
        self.conv1 = nn.Linear(channels[0], channels[1])
        self.conv2 = nn.Linear(channels[1], o * i)
        self.class_conv = nn.Linear(o, num_classes)  # applied after a ReLU to the centre position, over out-channels
        with torch.no_grad():
            for layer in (self.conv2, self.class_conv):
                layer.weight.div_(5.0)
                layer.bias.zero_()

    def _decode(self, x: Tensor, rows: slice, cols: slice) -> Tensor:
        """``[N, o, i, h, w]`` weights at spatial positions ``rows x cols`` of the ``s x s`` grid."""
        n = x.shape[0]
        o, i, sh, sw = self.max_shape
        c1 = self.conv1.in_features
        # fc output is laid out (c1, s, s); take the kept positions' rows, ordered (h, w, c1) for the linear layers
        idx = torch.arange(self.fc.out_features, device=x.device).view(c1, sh, sw)[:, rows, cols].permute(1, 2, 0)
        kh, kw = idx.shape[:2]
        z = F.relu(F.linear(x, self.fc.weight[idx.reshape(-1)], self.fc.bias[idx.reshape(-1)])).view(n, kh, kw, c1)
        z = self.conv2(F.relu(self.conv1(z)))  # [N, h, w, o * i]
        return z.view(n, kh, kw, o, i).permute(0, 3, 4, 1, 2)

    def forward(self, x: Tensor, kernel: tuple[int, int] = (1, 1), class_pred: bool = False) -> Tensor:
        """Decodes ``x`` ``[N, hid]``.

        Args:
            x: node embeddings.
            kernel: spatial size ``(h, w)`` needed. Sizes up to ``s`` are the centre ``h x w`` crop of the ``s x s``
                prediction (:func:`centre_slice`). If ``h > s`` or ``w > s``, the centre ``min(h, s) x min(w, s)``
                crop is resized to ``h x w`` by bilinear interpolation (``align_corners=False``), per ``(o, i)``
                slice; when both exceed ``s`` this is the reference's interpolation of the full ``s x s`` grid (the
                reference handles only that case, for one node at a time; here any batch and either axis).
            class_pred: decode a classifier weight instead: the centre position's ``o x i`` slice through
                ``ReLU -> Linear(o, num_classes)``, giving ``[N, num_classes, i]``.

        Returns:
            ``[N, o, i, h, w]``, or ``[N, num_classes, i]`` with ``class_pred``.
        """
        _, _, sh, sw = self.max_shape
        if class_pred:
            w = self._decode(x, centre_slice(sh, 1), centre_slice(sw, 1))[..., 0, 0]  # [N, o, i]
            return self.class_conv(F.relu(w).transpose(1, 2)).transpose(1, 2)
        kh, kw = int(kernel[0]), int(kernel[1])
        w = self._decode(x, centre_slice(sh, kh), centre_slice(sw, kw))
        if kh > sh or kw > sw:
            n, o, i, h, ww = w.shape
            w = F.interpolate(w.reshape(n, o * i, h, ww), size=(kh, kw), mode="bilinear", align_corners=False)
            w = w.view(n, o, i, kh, kw)
        return w


def tile_to_shape_centered(w: Tensor, shape: tuple[int, ...] | torch.Size) -> Tensor:
    """GHN-3's ``_tile_params``: fits a predicted tensor to ``shape``, cropping kernels around their centre.

    1. If ``w`` has more dimensions than ``shape``, the extra trailing ones are indexed away: channel dims (0, 1) at
       index 0, spatial dims (2, 3) at their centre ``size // 2`` (so a linear layer's weight is the centre position
       of a decoded ``o x i x s x s`` tensor, a 1-D tensor its ``[:, 0, centre, centre]``).
    2. Channel dims are cropped to ``min(target, predicted)`` from the start, spatial dims around the centre
       (:func:`centre_slice`).
    3. Out- and in-channels are tiled by repetition when the target is larger (``w.repeat``) and chopped; for a 3-D
       target whose in-channels need no tiling, the last dim is tiled the same way (ConvNeXt's layer scale), as the
       reference does.

    Unlike :func:`~hyperzoo.ghn.decoder.tile_to_shape` (GHN-2, top-left crop), spatial sizes are never tiled:
    kernels larger than the prediction must come from :meth:`ConvDecoder3.forward` with that kernel size (it
    interpolates). The reference's ViT positional-embedding case (a 3-D ``(1, T, C)`` target from a 4-D prediction,
    reshaped with a random class token prepended) is :func:`tile_pos_embedding`, used for reference GHN-3 checkpoints.

    Raises:
        ValueError: ``w`` has fewer dimensions than ``shape``, or a spatial dim of ``shape`` exceeds the prediction.
    """
    t = tuple(int(v) for v in shape)
    if w.dim() < len(t):
        raise ValueError(f"rank mismatch: predicted {tuple(w.shape)} for target {t}")
    if w.dim() > len(t):
        w = w[(slice(None),) * len(t) + tuple(0 if d < 2 else w.shape[d] // 2 for d in range(len(t), w.dim()))]
    for d in range(2, len(t)):
        if t[d] > w.shape[d] and not (d == 2 and len(t) == 3):
            raise ValueError(
                f"target {t} needs a kernel larger than the prediction {tuple(w.shape)}; decode with that kernel size"
            )
    crop = tuple(
        slice(0, min(a, b)) if d < 2 or len(t) == 3 else centre_slice(b, a) for d, (a, b) in enumerate(zip(t, w.shape))
    )
    w = w[crop]
    reps = [1] * len(t)
    for d in range(min(2, len(t))):
        if t[d] > w.shape[d]:
            reps[d] = -(-t[d] // w.shape[d])
    if len(t) == 3 and reps[1] == 1 and t[2] > w.shape[2]:
        reps[2] = -(-t[2] // w.shape[2])
    if any(r > 1 for r in reps):
        w = w.repeat(*reps)[tuple(slice(0, v) for v in t)]
    return w


def tile_pos_embedding(w: Tensor, shape: tuple[int, ...] | torch.Size) -> Tensor:
    """The reference GHN-3's ViT positional embedding: a decoded ``[1, c, s, s]`` block to a ``(1, T, C)`` target.

    The block is read as ``s * s`` tokens of ``c`` channels (``[1, s*s, c]``), cropped to the target, a class-token
    row drawn from ``N(0, 0.02)`` with torch's *global* generator is prepended (GHNs were trained on networks without
    a class token), and the result is tiled along tokens and channels to ``(1, T, C)`` (``ghn3/nn.py``,
    ``GHN3._tile_params``). Not weight-normalized by the reference (a positional encoding).

    Args:
        w: ``[1, c, s, s]`` (or ``[o, c, s, s]``; only the first ``shape[0]`` rows are used).
        shape: the target ``(1, T, C)``.
    """
    t = tuple(int(v) for v in shape)
    w = w.reshape(w.shape[0], w.shape[1], -1).permute(0, 2, 1)  # [o, s*s, c]
    w = w[: t[0], : t[1], : t[2]]
    token = torch.normal(mean=0.0, std=0.02, size=(1, 1, w.shape[2]), device=w.device, dtype=w.dtype)
    w = torch.cat((token.expand(w.shape[0], -1, -1), w), dim=1)
    reps = [-(-a // b) if a > b else 1 for a, b in zip(t, w.shape)]
    if any(r > 1 for r in reps):
        w = w.repeat(*reps)
    return w[: t[0], : t[1], : t[2]]
