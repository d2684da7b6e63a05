"""Operation and shape embeddings of GHN-2 nodes (Knyazev et al., 2021, Sec. 4 and Appendix; ``ppuda/ghn/layers.py``).

Each node starts from ``h_v^0 = E_op[op_v] + [E_ch(out) ; E_ch(in) ; E_sp(h) ; E_sp(w)]``: the op embedding plus the
concatenation of four ``hid/4``-dimensional shape embeddings. Shapes are looked up in fixed vocabularies; values the
GHN never saw are snapped to the nearest entry, and nodes without a shape use one extra "dummy" row of each table.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["ShapeEncoder", "channel_vocabulary", "spatial_vocabulary"]


def channel_vocabulary(num_classes: int) -> list[int]:
    """Channel counts with their own embedding row: 1, 3, the class count and 8..8192 on a coarsening grid."""
    values = {1, 3, num_classes}
    values.update(range(8, 64, 8))
    values.update(range(64, 4096, 16))
    values.update(range(4096, 8192 + 1, 32))
    return sorted(values)


def spatial_vocabulary(max_kernel: int) -> list[int]:
    """Kernel sizes with their own embedding row: odd sizes below ``max(12, max_kernel)``, plus 14 and 16."""
    return sorted(set(range(1, max(12, max_kernel), 2)) | {14, 16})


def _lookup_table(vocab: list[int], forced: dict[int, int]) -> Tensor:
    """``table[v]`` = row of value ``v`` for ``0 <= v <= vocab[-1]``; values outside the table use the last row.

    Exact vocabulary values map to their row, ``forced`` values to the row of the given value, and every other value
    below the largest entry to the row of its nearest entry (the smaller one on a tie).
    """
    arr = np.asarray(vocab)
    last = len(vocab) - 1
    table = torch.full((vocab[-1] + 1,), last, dtype=torch.long)
    row = {v: i for i, v in enumerate(vocab)}
    for v in range(1, vocab[-1] + 1):
        if v in row:
            table[v] = row[v]
        elif v in forced:
            table[v] = row[forced[v]]
        else:
            table[v] = int(np.argmin(np.abs(arr - v)))
    table[0] = last  # zero is not a shape: treated like an out-of-vocabulary value, as the reference does
    return table


class ShapeEncoder(nn.Module):
    """Embeds the 4-D shape ``(out, in, h, w)`` of each node and adds it to the node's op embedding.

    Args:
        hid: node feature size (each of the four shape parts gets ``hid // 4``).
        num_classes: class count of the GHN's training dataset (one extra channel vocabulary entry).
        max_shape: the GHN's largest predicted shape ``(out, in, k, k)``; ``k`` extends the spatial vocabulary.
    """

    channel_lut: Tensor
    spatial_lut: Tensor

    def __init__(self, hid: int, num_classes: int, max_shape: tuple[int, int, int, int]) -> None:
        super().__init__()
        if max_shape[2] != max_shape[3]:
            raise ValueError(f"max_shape must have a square kernel, got {tuple(max_shape)}")
        self.num_classes = num_classes
        self.channels = channel_vocabulary(num_classes)
        self.spatial = spatial_vocabulary(max_shape[3])
        # 4..7 channels count as 8; a 2x2 kernel counts as 3x3 (neither was seen in training).
        ch_forced = {c: 8 for c in range(4, 8)}
        self.register_buffer("channel_lut", _lookup_table(self.channels, ch_forced), persistent=False)
        self.register_buffer("spatial_lut", _lookup_table(self.spatial, {2: 3}), persistent=False)
        self.channel_embed = nn.Embedding(len(self.channels) + 1, hid // 4)
        self.spatial_embed = nn.Embedding(len(self.spatial) + 1, hid // 4)

    def _rows(self, values: Tensor, lut: Tensor) -> Tensor:
        inside = values < lut.numel()
        return torch.where(inside, lut[values.clamp(0, lut.numel() - 1)], lut[-1])

    def shape_indices(self, shape: Tensor, has_shape: Tensor) -> Tensor:
        """Embedding rows ``[N, 4]`` of 4-D shapes ``[N, 4]``; rows without a shape get the dummy index."""
        shape = shape.long()
        idx = torch.stack(
            [
                self._rows(shape[:, 0], self.channel_lut),
                self._rows(shape[:, 1], self.channel_lut),
                self._rows(shape[:, 2], self.spatial_lut),
                self._rows(shape[:, 3], self.spatial_lut),
            ],
            dim=1,
        )
        n_ch, n_sp = len(self.channels), len(self.spatial)
        dummy = torch.tensor([n_ch, n_ch, n_sp, n_sp], dtype=torch.long, device=shape.device)
        return torch.where(has_shape.view(-1, 1), idx, dummy.view(1, 4))

    def forward(self, x: Tensor, shape: Tensor, has_shape: Tensor) -> Tensor:
        """Returns ``x + [E_ch(out) ; E_ch(in) ; E_sp(h) ; E_sp(w)]``.

        Args:
            x: op embeddings ``[N, hid]``.
            shape: 4-D shape encodings ``[N, 4]``.
            has_shape: BoolTensor ``[N]``: nodes whose shape is embedded (parameters and pooling kernels).
        """
        idx = self.shape_indices(shape, has_shape)
        parts = [
            self.channel_embed(idx[:, 0]),
            self.channel_embed(idx[:, 1]),
            self.spatial_embed(idx[:, 2]),
            self.spatial_embed(idx[:, 3]),
        ]
        return x + torch.cat(parts, dim=1)
