"""Orthogonalized (and optionally noised) weights for fine-tuning from predicted parameters: "GHN-orth".

Knyazev (2022), "Pretraining a Neural Network before Knowing Its Architecture" (arXiv 2207.10049; ppuda's
``--init orth --beta B --layer L``): parameters predicted by a GHN fine-tune worse than a default init, and
replacing every predicted weight matrix by the orthogonal factor of its QR decomposition keeps what the GHN
predicted about each layer's directions while giving it the well-conditioned spectrum gradient descent expects.

For each conv/linear weight (every weight with two or more dimensions, in module order, the last one, the
classifier, excluded):

1. with ``noise = beta > 0``: add ``beta * std(corr(W)) * N(0, 1)`` to ``W``, where ``corr(W)`` is the
   correlation matrix of the rows of ``W`` flattened to ``(out, in * k * k)``; the 1-D norm layer after it
   (batch/layer norm weight and bias) gets noise of the same scale;
2. from the ``from_layer``-th weight on: ``W`` flattened to a tall matrix (``(in * k * k, out)`` when it has more
   columns than rows), ``Q R = W``, ``Q`` with its columns' signs fixed by ``sign(diag(R))``, reshaped back.
   The result has orthonormal rows or columns: singular values of 1.

The transform changes the function (unlike :func:`hyperzoo.graphs.scale_invariance.match_norms`); it is an
initialisation for training, not a prediction to evaluate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hyperzoo.errors import ConfigError

__all__ = ["orthogonal_factor", "orthogonalize_"]


def _as_tall(w: Tensor) -> tuple[Tensor, bool]:
    m = w.reshape(w.shape[0], -1)
    return (m.t(), True) if m.shape[0] < m.shape[1] else (m, False)


def orthogonal_factor(w: Tensor) -> Tensor:
    """The orthogonal factor of ``w``'s QR decomposition (signs fixed), in ``w``'s shape.

    Args:
        w: a weight of two or more dimensions (``(out, in, *kernel)``).

    Returns:
        a tensor of ``w``'s shape, dtype and device whose flattened ``(out, rest)`` matrix has orthonormal rows
        (``out <= rest``) or columns (``out > rest``).
    """
    m, transposed = _as_tall(w.detach().double())
    q, r = torch.linalg.qr(m)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()).to(r))
    return (q.t() if transposed else q).reshape(w.shape).to(w)


def _corr_std(w: Tensor) -> float:
    m = w.detach().reshape(w.shape[0], -1).double()
    if m.shape[0] < 2:
        return 0.0
    return float(torch.nan_to_num(torch.corrcoef(m)).std())


@torch.no_grad()
def orthogonalize_(
    net: nn.Module, from_layer: int | None = 1, noise: float = 0.0, generator: torch.Generator | None = None
) -> list[str]:
    """GHN-orth in place: noise, then orthogonalize every conv/linear weight of ``net`` but the classifier's.

    Args:
        net: the network (its parameters are modified in place).
        from_layer: orthogonalize from this weight on (1-based, in ``net.modules()`` order; ppuda's ``--layer``);
            earlier ones keep their values (and get the noise). None: no orthogonalization (noise only).
        noise: ``beta``: the noise's scale relative to the std of the weight's row correlations (0: none; ppuda
            used 3e-5 with orthogonalization, GHN-3 1e-5 alone).
        generator: random generator of the noise (None: torch's global one).

    Returns:
        the names of the weights orthogonalized.

    Raises:
        ConfigError: ``from_layer < 1`` or ``noise < 0``, or ``net`` has no conv/linear weight besides its last.
    """
    if from_layer is not None and from_layer < 1:
        raise ConfigError(f"from_layer={from_layer}: layers count from 1")
    if noise < 0:
        raise ConfigError(f"noise={noise}: must be >= 0")
    weighted = [
        (name, m)
        for name, m in net.named_modules()
        if isinstance(getattr(m, "weight", None), Tensor) and m.weight.dim() > 0
    ]
    matrices = [name for name, m in weighted if m.weight.dim() >= 2]
    if len(matrices) < 2:
        raise ConfigError(
            f"{type(net).__name__} has {len(matrices)} conv/linear weight(s); GHN-orth leaves the last (the "
            "classifier) alone and needs at least one more"
        )
    last, layer, scale, done = matrices[-1], 0, 0.0, []
    for name, m in weighted:
        w = m.weight
        if w.dim() >= 2:
            if name == last:
                break
            layer += 1
            scale = noise * _corr_std(w) if noise > 0 else 0.0
            if scale > 0:
                w.add_(scale * torch.randn(w.shape, generator=generator).to(w))
            if from_layer is not None and layer >= from_layer:
                w.copy_(orthogonal_factor(w))
                done.append(f"{name}.weight")
        elif scale > 0:  # a norm layer after the conv: noise of the conv's scale
            w.add_(scale * torch.randn(w.shape, generator=generator).to(w))
            bias = getattr(m, "bias", None)
            if isinstance(bias, Tensor):
                bias.add_(scale * torch.randn(bias.shape, generator=generator).to(bias))
    return done
