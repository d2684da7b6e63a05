"""Fully connected hypernetworks: one MLP for all target tensors, or one MLP applied per chunk.

Both map a conditioning vector ``x`` (a task embedding, an encoded hyperparameter, noise) to every tensor of a
target network's :class:`~hyperzoo.hypernets.specs.ParamSpec` list and return ``{name: tensor}``. An unbatched
input ``[d]`` gives the target shapes; a batch ``[B, d]`` gives ``B`` weight sets ``[B, *shape]`` (run them with
:func:`~hyperzoo.hypernets.functional.batched_forward`).

Output scaling: the raw MLP output has roughly unit variance at initialisation; each entry is multiplied by a fixed
per-tensor scale (He fan-in std of its target weight; ``bias_scale`` for biases and norm parameters) and shifted by
the target's default mean (1 for norm scales), so the generated network starts at a sensible scale. These are
buffers, not parameters (``output_scaling=False`` turns them off).

Axis legend: ``b`` conditions (weight sets), ``c`` chunks, ``d`` condition size, ``e`` chunk embedding size,
``k`` entries per chunk.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.specs import ParamSpec, ShapeMismatchError, split_flat, total_numel

__all__ = ["ChunkedMLPHypernet", "Hypernet", "MLPHypernet"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        lin = nn.Linear(a, b)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="leaky_relu" if activation == "leaky_relu" else "relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class Hypernet(nn.Module):
    """Base of hyperzoo's hypernets: ``specs``, ``in_features`` and the map from a flat output to named tensors.

    Subclasses implement :meth:`raw` (``[B, in_features] -> [B, total]``); :meth:`forward` handles unbatched
    inputs, output scaling and the split into named tensors.

    Args:
        in_features: size of the conditioning vector.
        specs: the target tensors.
        output_scaling: per-tensor output scale and shift (module docstring).
        bias_scale: scale of biases and normalization parameters.
    """

    out_scale: Tensor
    out_shift: Tensor

    def __init__(
        self, in_features: int, specs: Sequence[ParamSpec], output_scaling: bool = True, bias_scale: float = 0.1
    ) -> None:
        super().__init__()
        if in_features < 1:
            raise ConfigError(f"{type(self).__name__}: in_features must be >= 1, got {in_features}")
        if not specs:
            raise ConfigError(f"{type(self).__name__}: no target tensors (empty specs)")
        self.in_features = int(in_features)
        self.specs = list(specs)
        self.num_outputs = total_numel(self.specs)
        scale = torch.cat([torch.full((s.numel,), s.init_std() or bias_scale) for s in self.specs])
        shift = torch.cat([torch.full((s.numel,), s.init_mean()) for s in self.specs])
        if not output_scaling:
            scale, shift = torch.ones_like(scale), torch.zeros_like(shift)
        self.register_buffer("out_scale", scale, persistent=False)
        self.register_buffer("out_shift", shift, persistent=False)

    def raw(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def for_residual(self) -> None:
        """Drop the output shift: the output becomes a delta added to ``theta0`` (what MIP calls)."""
        self.out_shift.zero_()

    def flat(self, x: Tensor) -> Tensor:
        """The scaled flat output ``[B, total]`` of a batch ``[B, in_features]``."""
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ShapeMismatchError(
                f"{type(self).__name__}: input has shape {tuple(x.shape)}, expected [B, {self.in_features}] "
                f"or [{self.in_features}]"
            )
        return self.raw(x) * self.out_scale + self.out_shift

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``{name: [*shape]}`` for an input ``[in_features]``, ``{name: [B, *shape]}`` for ``[B, in_features]``."""
        single = x.dim() == 1
        out = self.flat(x.unsqueeze(0) if single else x)
        params = split_flat(out, self.specs)
        return {k: v[0] for k, v in params.items()} if single else params


class MLPHypernet(Hypernet):
    """A full hypernetwork: ``theta = W_out phi(x) + b_out`` with one output unit per generated entry.

    The "full" output strategy of the hypernetwork review (Chauhan et al.) and of hypnettorch's ``HMLP``: every
    target entry has its own row of ``W_out``, so the output layer has ``hidden[-1] * total`` weights.

    Args:
        in_features: size of the conditioning vector.
        specs: the target tensors (:func:`~hyperzoo.hypernets.specs.param_specs`).
        hidden: hidden layer widths.
        activation: ``relu``, ``leaky_relu``, ``tanh`` or ``gelu``.
        output_scaling, bias_scale: see :class:`Hypernet`.

    Shapes:
        input ``[d]`` or ``[B, d]`` -> ``{name: [*shape]}`` or ``{name: [B, *shape]}``.
    """

    def __init__(
        self,
        in_features: int,
        specs: Sequence[ParamSpec],
        hidden: Sequence[int] = (64, 64),
        activation: str = "leaky_relu",
        output_scaling: bool = True,
        bias_scale: float = 0.1,
    ) -> None:
        super().__init__(in_features, specs, output_scaling, bias_scale)
        self.body = _mlp([self.in_features, *hidden], activation)
        last = hidden[-1] if hidden else self.in_features
        self.head = nn.Linear(last, self.num_outputs)
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(last))  # unit-variance raw output
        nn.init.zeros_(self.head.bias)

    def raw(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class ChunkedMLPHypernet(Hypernet):
    """A chunked hypernetwork: one small MLP emits the flat target ``chunk_size`` entries at a time.

    Ha et al. (2017) / von Oswald et al. (2020): the flat parameter vector is cut into ``C = ceil(total / chunk)``
    chunks; chunk ``c`` is ``h([x, e_c])`` with a learned chunk embedding ``e_c``, and the last chunk's surplus is
    dropped. The output layer has ``hidden[-1] * chunk_size`` weights instead of ``hidden[-1] * total``.

    Args:
        in_features: size of the conditioning vector.
        specs: the target tensors.
        chunk_size: entries per chunk.
        chunk_emb_dim: size of the chunk embeddings.
        hidden: hidden widths of the shared MLP.
        activation: see :class:`MLPHypernet`.
        output_scaling, bias_scale: see :class:`Hypernet`.

    Shapes:
        input ``[d]`` or ``[B, d]`` -> ``{name: [*shape]}`` or ``{name: [B, *shape]}``; internally ``[B * C, d + e]``.
    """

    def __init__(
        self,
        in_features: int,
        specs: Sequence[ParamSpec],
        chunk_size: int = 4096,
        chunk_emb_dim: int = 8,
        hidden: Sequence[int] = (64, 64),
        activation: str = "leaky_relu",
        output_scaling: bool = True,
        bias_scale: float = 0.1,
    ) -> None:
        super().__init__(in_features, specs, output_scaling, bias_scale)
        if chunk_size < 1 or chunk_emb_dim < 1:
            raise ConfigError(f"chunk_size and chunk_emb_dim must be >= 1, got {chunk_size}, {chunk_emb_dim}")
        self.chunk_size = int(chunk_size)
        self.num_chunks = math.ceil(self.num_outputs / self.chunk_size)
        self.chunk_emb = nn.Parameter(torch.randn(self.num_chunks, chunk_emb_dim))
        self.body = _mlp([self.in_features + chunk_emb_dim, *hidden], activation)
        last = hidden[-1] if hidden else self.in_features + chunk_emb_dim
        self.head = nn.Linear(last, self.chunk_size)
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(last))
        nn.init.zeros_(self.head.bias)

    def raw(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        inp = torch.cat(
            [repeat(x, "b d -> b c d", c=self.num_chunks), repeat(self.chunk_emb, "c e -> b c e", b=b)], dim=-1
        )
        chunks = self.head(self.body(inp))  # [b, c, k]
        return rearrange(chunks, "b c k -> b (c k)")[:, : self.num_outputs]
