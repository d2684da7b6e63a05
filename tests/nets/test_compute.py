"""MACs through torch's FlopCounterMode (hyperzoo.nets.compute), checked against counts by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyperzoo.nets import count_macs, count_params, create_model


def test_resnet20_macs_match_the_conv_and_linear_count():
    model = create_model("resnet20")
    expected = 0  # every conv: output positions x (in/groups x kernel) per output channel; linear: in x out
    hooks = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal expected
        w = module.weight
        expected += output[0].numel() * (w[0].numel() if isinstance(module, nn.Conv2d) else w.shape[1])

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    model.train()
    assert count_macs(model, torch.zeros(3, 3, 32, 32)) == expected == 40_551_040  # per sample, any batch size
    assert model.training  # mode restored
    assert count_params(model) == sum(p.numel() for p in model.parameters())


class _MHA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class _SDPA(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.scaled_dot_product_attention(x, x, x)


def _unfused_macs(model: nn.Module, x: torch.Tensor) -> int:
    """The count with gradients on (no inference fast path) and the math attention kernel (plain matmuls)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        model.eval()(x)
    return counter.get_total_flops() // 2 // x.shape[0]


@pytest.mark.parametrize(
    ("make", "shape", "expected"),
    [
        (_MHA, (2, 10, 32), 10 * 4 * 32 * 32 + 2 * 10 * 10 * 32),  # q, k, v, out projections + QK^T and AV
        (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2), (2, 10, 32), None),
        (_SDPA, (2, 4, 10, 8), 4 * 2 * 10 * 10 * 8),
    ],
)
def test_fused_attention_counts_as_the_unfused_ops(make, shape, expected):
    torch.manual_seed(0)
    model, x = make(), torch.randn(shape)
    macs = count_macs(model, x)  # eval + no_grad: the fused inference kernels on CPU
    assert macs == _unfused_macs(model, x)
    if expected is not None:
        assert macs == expected
