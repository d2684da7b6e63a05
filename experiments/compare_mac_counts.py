"""MACs per image: torch's FlopCounterMode (hyperzoo.nets.count_macs) against forward hooks on Conv/Linear modules.

The hook count is how hyperzoo counted before (``hyperzoo/merge/compute.py``): it sees only ``nn.Conv*d`` and
``nn.Linear`` modules that are *called*, so it misses matrix products run as functions (attention, ``F.linear``
with a module's weight, the fused ``nn.MultiheadAttention`` kernels). Prints a markdown table and CPU seconds.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python experiments/compare_mac_counts.py
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch
from torch import Tensor, nn

from hyperzoo.nets import count_macs, create_model

CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("resnet20", {}, (2, 3, 32, 32)),
    ("wrn16_4", {}, (2, 3, 32, 32)),
    ("resnet18", {"adapt_cifar": True}, (2, 3, 32, 32)),
    ("resnet50", {}, (2, 3, 224, 224)),
    ("mobilenet_v3_small", {}, (2, 3, 224, 224)),
    ("deepnets1m_darts", {}, (2, 3, 32, 32)),
    ("deepnets1m_vit", {}, (2, 3, 32, 32)),
    ("vit_b_16", {}, (1, 3, 224, 224)),
    ("swin_t", {}, (1, 3, 224, 224)),
]


@torch.no_grad()
def hook_macs(model: nn.Module, x: Tensor) -> int:
    """The module-hook count: output positions x weights per output of every called Conv*d / Linear."""
    total = 0

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
        nonlocal total
        per_sample = output.numel() // max(1, output.shape[0])
        if isinstance(module, nn.modules.conv._ConvNd):
            w = module.weight
            total += per_sample * w[0].numel() if not module.transposed else inputs[0][0].numel() * w[0].numel()
        elif isinstance(module, nn.Linear):
            total += per_sample * module.in_features

    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return total


def main() -> None:
    print(f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    print("| model | input | hooks (before) | FlopCounterMode (now) | difference | CPU s hooks / now |")
    print("|---|---|---:|---:|---:|---:|")
    for name, kwargs, shape in CASES:
        model, x = create_model(name, **kwargs), torch.randn(shape)
        t0 = time.process_time()
        old = hook_macs(model, x)
        t1 = time.process_time()
        new = count_macs(model, x)
        t2 = time.process_time()
        diff = f"{(new - old) / old * 100:+.1f}%" if new != old else "0"
        print(f"| {name} | {shape[-1]}x{shape[-1]} | {old:,} | {new:,} | {diff} | {t1 - t0:.2f} / {t2 - t1:.2f} |")


if __name__ == "__main__":
    main()
