"""Closed-form ridge least squares from streamed Gram matrices: the solver PLeaS and SN-Net share.

For inputs ``X`` (N x d) and targets ``Y`` (N x m) the solver accumulates ``G = X^T X`` and ``R = Y^T X`` batch
by batch (memory O(d^2 + m d), never N), then returns

    W = (R + lam W0) (G + lam I)^-1,        lam = ridge * trace(G) / d,

the minimizer of ``||X W^T - Y||^2 + lam ||W - W0||^2`` (ridge towards a prior ``W0``, zero by default). A
column of ones in ``X`` gives a bias. ``ridge = 0`` is ordinary least squares (minimum-norm through a
pseudo-inverse when columns are dependent, e.g. dead ReLU channels) and needs ``N >= d`` samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hyperzoo.errors import DataError

__all__ = ["RidgeSolver"]


class RidgeSolver:
    """Streams ``(X, Y)`` batches and solves the ridge least-squares problem in closed form (float64).

    Args:
        in_features: ``d``, columns of ``X`` (without the bias column).
        out_features: ``m``, columns of ``Y``.
        bias: append a column of ones to ``X`` (the solution's last column is the bias).
        ridge: relative ridge strength (scaled by the mean diagonal of ``G``).

    Shapes:
        ``update(x, y)``: ``x (N, d)``, ``y (N, m)``; ``solve()`` returns ``(m, d)`` weights and ``(m,)`` bias
        (or None).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, ridge: float = 1e-4) -> None:
        if ridge < 0:
            raise DataError(f"ridge must be >= 0, got {ridge}")
        self.d, self.m, self.bias, self.ridge = in_features, out_features, bias, ridge
        k = in_features + int(bias)
        self.gram = torch.zeros(k, k, dtype=torch.float64)
        self.cross = torch.zeros(out_features, k, dtype=torch.float64)
        self.n = 0

    def update(self, x: Tensor, y: Tensor) -> None:
        """Adds a batch: products in the inputs' precision (float32: fast), sums in float64."""
        x, y = x.detach(), y.detach()
        if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
            x, y = x.float(), y.float()
        if self.bias:
            x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], 1)
        self.gram += (x.T @ x).double().cpu()
        self.cross += (y.to(x.dtype).T @ x).double().cpu()
        self.n += x.shape[0]

    def solve(self, prior: Tensor | None = None, prior_bias: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The ridge solution, shrunk towards ``prior`` (weights ``(m, d)``) and ``prior_bias``.

        Raises:
            DataError: no samples, or fewer samples than unknowns with ``ridge == 0``.
        """
        k = self.gram.shape[0]
        if self.n == 0:
            raise DataError("least-squares solve got no samples; feed batches with update() first")
        if self.ridge == 0 and self.n < k:
            raise DataError(
                f"least squares with {k} unknowns per output got only {self.n} samples; use more batches or a "
                "ridge > 0 (the ridge term makes the system solvable with any number of samples)"
            )
        p = torch.zeros(self.m, k, dtype=torch.float64)
        if prior is not None:
            p[:, : self.d] = prior.detach().double().cpu().reshape(self.m, self.d)
        if prior_bias is not None and self.bias:
            p[:, -1] = prior_bias.detach().double().cpu()
        lam = self.ridge * float(self.gram.diagonal().mean().clamp_min(1e-12))
        a = self.gram + lam * torch.eye(k, dtype=torch.float64)
        rhs = self.cross + lam * p
        if lam > 0:
            w = torch.linalg.solve(a, rhs.T).T  # a is symmetric positive definite
        else:  # ordinary least squares; dead or duplicate input columns get the minimum-norm solution
            w = rhs @ torch.linalg.pinv(a, rtol=1e-10, hermitian=True)
        if self.bias:
            return w[:, :-1].float(), w[:, -1].float()
        return w.float(), None
