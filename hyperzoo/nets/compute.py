"""Compute of a network as it is stored and run: multiply-accumulates per sample, parameter count, example input.

:func:`example_input` is a random image batch at the network's own resolution, for one forward pass.

MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` over one forward pass: every matrix product the
network actually runs (convolutions, transposed convolutions, ``linear``/``addmm``, batched matrix products,
attention), at the shapes it runs them, so a widened merged model is charged for every block it materialises,
zero or not. One multiply-accumulate is two FLOPs. Element-wise work (norms, activations, additions, pooling) is
not counted, as is usual for MAC figures.

Three fused kernels that torch's counter has no formula for are added here, so that a count does not depend on
the device or on inference fast paths: CPU flash attention (``F.scaled_dot_product_attention`` on CPU), and the
inference fast paths of ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` (taken in eval mode without
gradients): their projections, attention products and feed-forward layers count as the unfused ops would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["count_macs", "count_params", "example_input"]

Shape = tuple[int, ...]


def count_params(model: nn.Module) -> int:
    """Number of stored parameter entries."""
    return sum(p.numel() for p in model.parameters())


def example_input(model: nn.Module, input_size: int | None = None, batch: int = 2) -> Tensor:
    """A random image batch at the model's own resolution (``expected_input_size``, else 224)."""
    size = input_size or int(getattr(model, "expected_input_size", 224) or 224)
    channels = 3
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None:
        channels = first.in_channels
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates per input sample of one forward pass of ``x`` (a batch) through ``model``, eval mode.

    Args:
        model: any module; its train/eval mode is restored afterwards.
        x: an input batch (the count is divided by ``x.shape[0]``).
    """
    was = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_FUSED_FORMULAS)
    try:
        with counter:
            model(x)
    finally:
        model.train(was)
    return counter.get_total_flops() // 2 // max(1, x.shape[0] if x.ndim else 1)


def _attention_flops(batch: int, heads: int, embed: int, len_q: int, len_kv: int) -> int:
    d = embed // heads
    return sdpa_flop_count((batch, heads, len_q, d), (batch, heads, len_kv, d), (batch, heads, len_kv, d))


def _sdpa_flop(query: Shape, key: Shape, value: Shape, *args: Any, **kwargs: Any) -> int:
    """``aten._scaled_dot_product_flash_attention_for_cpu``: as torch counts the CUDA attention kernels."""
    return sdpa_flop_count(query, key, value)


def _mha_flop(query: Shape, key: Shape, value: Shape, embed_dim: int, num_head: int, *args: Any, **kwargs: Any) -> int:
    """``aten._native_multi_head_attention``: q/k/v and output projections plus the attention products."""
    b, lq, e = query
    projections = 2 * b * e * e * (lq + key[1] + value[1]) + 2 * b * lq * e * e
    return projections + _attention_flops(b, num_head, e, lq, key[1])


def _encoder_layer_flop(
    src: Shape, embed_dim: int, num_heads: int, qkv_weight: Shape, *args: Any, **kwargs: Any
) -> int:
    """``aten._transformer_encoder_layer_fwd``: self-attention (as :func:`_mha_flop`) plus the two FFN linears."""
    ffn_weight_1: Shape = args[10]
    b, length, e = src
    return _mha_flop(src, src, src, e, num_heads) + 2 * 2 * b * length * e * ffn_weight_1[0]


_FUSED_FORMULAS: dict[Any, Any] = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flop,
    torch.ops.aten._native_multi_head_attention: _mha_flop,
    torch.ops.aten._transformer_encoder_layer_fwd: _encoder_layer_flop,
}
