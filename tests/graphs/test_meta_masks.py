"""The meta trace covers attention with a learned additive mask; remaining fallbacks are reported once."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hyperzoo.graphs import graph_from_module
from hyperzoo.graphs.trace_report import MetaTraceFallbackWarning


class RelPosAttention(nn.Module):
    """Swin-style attention: a relative position bias table, indexed and added to the logits as ``attn_mask``."""

    def __init__(self, dim: int = 8, heads: int = 2, window: int = 3, learned: bool = True) -> None:
        super().__init__()
        self.heads, self.window, self.learned = heads, window, learned
        self.qkv = nn.Linear(dim, 3 * dim)
        self.relative_position_bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if not self.learned:
            bias = bias.detach()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


@pytest.mark.parametrize("learned", [True, False])
def test_learned_attention_mask_traces_on_meta(learned):
    model = RelPosAttention(learned=learned)
    x = torch.randn(2, 9, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetaTraceFallbackWarning)  # no fallback to a real forward
        g = graph_from_module(model, inputs=x, rules="hyperzoo")  # hyperzoo's rules: attention kernels are nodes
    assert g.meta_fallback == "" and g.unmapped == []
    real = graph_from_module(model, inputs=x, meta=False, rules="hyperzoo")
    assert g.to_json_dict() == real.to_json_dict()
    if learned:  # the math path, as on CPU (the flash kernel cannot differentiate the mask): the table is a node
        assert "rel_pos_bias" in g.op_names
    else:  # a constant mask: the fused kernel's node, and the detached table is unused
        assert g.unused == ["relative_position_bias_table"] and "msa" in g.op_names


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y * 2 if float(y.detach().sum()) > -1e9 else y  # reads a value: impossible on meta tensors


def test_a_fallback_is_reported_once_with_model_and_cause():
    model = DataDependent()
    x = torch.randn(2, 4)
    with pytest.warns(MetaTraceFallbackWarning, match=r"FallbackOnce: the meta-device trace failed \(.+\)") as rec:
        g = graph_from_module(model, inputs=x, name="FallbackOnce")
    assert len([w for w in rec if w.category is MetaTraceFallbackWarning]) == 1
    assert g.meta_fallback and g.meta_fallback in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetaTraceFallbackWarning)
        again = graph_from_module(model, inputs=x, name="FallbackOnce")  # the same model and cause: not again
    assert again.meta_fallback == g.meta_fallback
    assert graph_from_module(model, inputs=x, meta=False).meta_fallback == ""


def test_graphs_info_shows_unmapped_and_fallbacks(capsys, monkeypatch):
    from hyperzoo.cli import main
    from hyperzoo.nets import factory

    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, 4)
            self.table = nn.Parameter(torch.randn(4))

        def forward(self, x):
            y = self.fc(x.flatten(1))
            y = y * 2 if float(y.detach().sum()) > -1e9 else y
            return y + torch.sort(self.table)[0]

    from hyperzoo.registry import RegistryEntry

    entry = RegistryEntry("odd_test_model", lambda **kw: Odd(), "test")
    monkeypatch.setitem(factory.MODELS._entries, "odd_test_model", entry)
    assert main(["graphs", "info", "odd_test_model", "--input-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "unmapped     1: table" in out
    assert "WARNING: 1 parameter tensor(s) have no role" in out and "param_ops" in out
    assert "meta trace   FELL BACK to a real forward pass" in out
