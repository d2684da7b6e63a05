"""The GHN-2 parameter decoder as a conditional hypernet body (usable under MIP).

Every target tensor ``t`` gets a learned embedding ``e_t``; a conditioning vector ``x`` (an encoded hyperparameter,
a task embedding) is projected and added: ``u_t = e_t + P x``. Each ``u_t`` is decoded by GHN-2's convolutional
decoder (:class:`hyperzoo.hypernets.decoder.ConvDecoder`, the same module the GHN uses) into a ``(o, i, s, s)``
block, fitted to the tensor's shape by :func:`hyperzoo.hypernets.decoder.tile_to_shape`; 1-D tensors come from a
small linear head, as in the GHN. All tensors of the same kernel size are decoded in one call for the whole batch.

Output normalization: ``"ghn"`` is GHN-2's operation-dependent normalization (weights ``* sqrt(2 / fan_in)``, norm
scales ``2 sigmoid(p / 2)``, biases ``tanh(p / 5)``); ``"linear"`` only multiplies by the He std (weights) or
``bias_scale`` (everything else), so the output can serve as an additive delta (what :class:`MIPHypernet` sets).

Axis legend: ``b`` conditions (weight sets), ``t`` tensors of one kernel size, ``h`` embedding size.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.decoder import ConvDecoder, tile_to_shape
from hyperzoo.hypernets.specs import ParamSpec, ShapeMismatchError

__all__ = ["GHNDecoderHypernet"]


class GHNDecoderHypernet(nn.Module):
    """Per-tensor embeddings plus a projected condition, decoded by GHN-2's ``ConvDecoder``.

    Args:
        in_features: size of the conditioning vector.
        specs: the target tensors.
        hid: embedding size (GHN-2: 32).
        max_shape: the largest decoded block ``(o, i, s, s)``; larger tensors are tiled.
        normalize: ``"ghn"`` or ``"linear"`` (module docstring).
        bias_scale: the ``"linear"`` scale of non-weight tensors.

    Shapes:
        ``[B, in_features]`` -> ``{name: [B, *shape]}``; ``[in_features]`` -> ``{name: [*shape]}``.
    """

    def __init__(
        self,
        in_features: int,
        specs: Sequence[ParamSpec],
        hid: int = 32,
        max_shape: tuple[int, int, int, int] = (64, 64, 3, 3),
        normalize: str = "ghn",
        bias_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if normalize not in ("ghn", "linear"):
            raise ConfigError(f"GHNDecoderHypernet: normalize must be 'ghn' or 'linear', got {normalize!r}")
        self.in_features, self.specs, self.normalize, self.bias_scale = (
            int(in_features),
            list(specs),
            normalize,
            bias_scale,
        )
        self.max_shape = tuple(int(v) for v in max_shape)
        self.tensor_emb = nn.Parameter(torch.randn(len(self.specs), hid))
        self.proj = nn.Linear(self.in_features, hid)
        self.decoder = ConvDecoder(hid, (4 * hid, 8 * hid), self.max_shape, num_classes=1)  # type: ignore[arg-type]
        max_ch = max(self.max_shape[:2])
        self.decoder_1d = nn.Sequential(nn.Linear(hid, 2 * hid), nn.ReLU(), nn.Linear(2 * hid, max_ch))
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for j, s in enumerate(self.specs):
            if len(s.shape) == 1:
                groups[(0, 0)].append(j)
            else:
                k = (s.shape[2], s.shape[3] if len(s.shape) > 3 else 1) if len(s.shape) > 2 else (1, 1)
                groups[k].append(j)
        self.groups = dict(groups)

    def for_residual(self) -> None:
        """Switch to ``"linear"`` output normalization (the output is then a delta added to ``theta0``)."""
        self.normalize = "linear"

    def _scale(self, w: Tensor, spec: ParamSpec) -> Tensor:
        if self.normalize == "linear":
            return w * (spec.init_std() or self.bias_scale)
        if spec.role == "weight":
            return w * math.sqrt(2.0 / max(1, spec.fan_in))
        if spec.is_norm_weight:
            return 2 * torch.sigmoid(0.5 * w)
        return torch.tanh(0.2 * w)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        single = x.dim() == 1
        x = x.unsqueeze(0) if single else x
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ShapeMismatchError(
                f"GHNDecoderHypernet: input has shape {tuple(x.shape)}, expected [B, {self.in_features}]"
            )
        b = x.shape[0]
        u = self.tensor_emb.unsqueeze(0) + self.proj(x).unsqueeze(1)  # [b, T, h]
        out: dict[str, Tensor] = {}
        for kernel, idx in self.groups.items():
            ub = rearrange(u[:, idx], "b t h -> (b t) h")
            if kernel == (0, 0):
                pred = rearrange(self.decoder_1d(ub), "(b t) c -> b t c", b=b)
            else:
                pred = rearrange(self.decoder(ub, kernel), "(b t) o i kh kw -> b t o i kh kw", b=b)
            for pos, j in enumerate(idx):
                spec = self.specs[j]
                w = pred[:, pos]
                if len(spec.shape) == 2:
                    w = w[:, :, :, 0, 0]
                elif len(spec.shape) == 3:
                    w = w[:, :, :, :, 0]
                out[spec.name] = self._scale(tile_to_shape(w, (b, *spec.shape)), spec)
        ordered = {s.name: out[s.name] for s in self.specs}
        return {k: v[0] for k, v in ordered.items()} if single else ordered
