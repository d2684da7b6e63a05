"""Compute of a network as it is stored and run: multiply-accumulates of its conv and linear layers, parameters.

Counted by forward hooks on the actual module objects during one forward pass, so a widened merged model is
charged for every block it materialises, zero or not.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["count_macs", "count_params"]


def count_params(model: nn.Module) -> int:
    """Number of stored parameter entries."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates per input sample of every ``Conv*d`` and ``Linear`` in one forward pass of ``x``."""
    total = [0]

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
        per_sample = output.numel() // max(1, output.shape[0])
        if isinstance(module, nn.modules.conv._ConvNd):
            w = module.weight
            total[0] += per_sample * w[0].numel() if not module.transposed else inputs[0][0].numel() * w[0].numel()
        elif isinstance(module, nn.Linear):
            total[0] += per_sample * module.in_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))
    ]
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return total[0]
