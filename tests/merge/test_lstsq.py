"""The closed-form ridge solver."""

from __future__ import annotations

import pytest
import torch

from hyperzoo.errors import DataError
from hyperzoo.merge.lstsq import RidgeSolver


def test_recovers_a_known_linear_map() -> None:
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(5, 7, generator=g), torch.randn(5, generator=g)
    solver = RidgeSolver(7, 5, bias=True, ridge=0.0)
    for _ in range(4):  # streamed in batches
        x = torch.randn(50, 7, generator=g)
        solver.update(x, x @ w.T + b)
    w_hat, b_hat = solver.solve()
    assert b_hat is not None
    torch.testing.assert_close(w_hat, w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b_hat, b, atol=1e-4, rtol=1e-4)


def test_too_few_samples_without_ridge_is_an_error() -> None:
    solver = RidgeSolver(10, 2, ridge=0.0)
    solver.update(torch.randn(4, 10), torch.randn(4, 2))
    with pytest.raises(DataError, match="only 4 samples"):
        solver.solve()


def test_ridge_shrinks_towards_the_prior_with_few_samples() -> None:
    prior = torch.randn(2, 10)
    solver = RidgeSolver(10, 2, bias=False, ridge=1e6)
    x = torch.randn(3, 10)
    solver.update(x, torch.randn(3, 2))
    w, _ = solver.solve(prior)
    torch.testing.assert_close(w, prior, atol=1e-3, rtol=1e-3)
