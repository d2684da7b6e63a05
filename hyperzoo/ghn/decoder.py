"""GHN-2 parameter decoders (Knyazev et al., 2021, Sec. 4 and Appendix; ``ppuda/ghn/decoder.py``, ``nn.py``).

A node embedding is decoded into a fixed maximum-size tensor (``max_shape = (64, 64, 11, 11)`` for CIFAR-10) by
:class:`ConvDecoder`, which is then sliced or tiled to the parameter's real shape (:func:`tile_to_shape`) and scaled
by the operation-dependent normalization (:func:`normalize_parameter`). The decoder and the tiling are general
(:mod:`hyperzoo.hypernets.decoder`, re-exported here); the normalization is GHN-2's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from hyperzoo.hypernets.decoder import ConvDecoder, tile_into, tile_to_shape

__all__ = ["ConvDecoder", "normalize_parameter", "tile_into", "tile_to_shape"]


def normalize_parameter(p: Tensor, is_weight: bool, shape: Sequence[int] | None = None) -> Tensor:
    """Operation-dependent normalization of a predicted parameter (GHN-2's ``weight_norm``, Sec. 4 of the paper).

    - Weights with 2+ dimensions: fan-in scaling ``p * sqrt(beta / fan_in)`` with ``fan_in = p[0].numel()`` and
      ``beta = 1`` for layers not followed by a ReLU (depthwise ``in == 1`` or ``1 x k`` kernels with ``h < w``),
      ``beta = 2`` otherwise; positional encodings (``out == 1`` and ``h >= 11``) are left as they are.
    - 1-D weights (normalization layers): ``2 sigmoid(p / 2)`` in ``[0, 2]``.
    - Biases: ``tanh(p / 5)`` in ``[-1, 1]``.

    Every case is elementwise given the *target* shape, so it commutes with tiling: pass the target as ``shape``
    to normalize the small predicted block before it is tiled (same values, one pass over the block instead of
    one over the full tensor).
    """
    sz = tuple(p.shape) if shape is None else tuple(int(v) for v in shape)
    if len(sz) > 1:
        if len(sz) > 2 and sz[2] >= 11 and sz[0] == 1:
            return p
        no_relu = len(sz) > 2 and (sz[1] == 1 or (len(sz) > 3 and sz[2] < sz[3]))  # 3-D: tokens, no kernel
        beta = 1.0 if no_relu else 2.0
        return p * math.sqrt(beta / math.prod(sz[1:]))
    if is_weight:
        return 2 * torch.sigmoid(0.5 * p)
    return torch.tanh(0.2 * p)
