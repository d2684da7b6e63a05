"""The tracing core: the neutral op protocol, and meta-trace kernels scoped to the tracing thread."""

import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hyperzoo.graphs import graph_from_module
from hyperzoo.graphs.from_module import meta_trace_kernels
from hyperzoo.graphs.trace_core import OpNode, Param, build_arch_graph, walk
from hyperzoo.graphs.vocabulary import PRIMITIVES


def _ops(graph) -> list[str]:
    return [PRIMITIVES[i] for i in graph.op.tolist()]


def test_hand_made_ops_build_a_graph():
    """Any adapter's ops: conv (weight, bias) -> relu -> global mean -> linear (addmm), walked and filtered."""
    conv_w = Param("conv.weight", (8, 3, 3, 3), key=1, attr="weight", op="conv")
    conv_b = Param("conv.bias", (8,), key=2, attr="bias", op="bias")
    fc_w = Param("fc.weight", (10, 8), key=3, attr="weight", op="conv")
    fc_b = Param("fc.bias", (10,), key=4, attr="bias", op="bias")
    conv = OpNode("Convolution", (None, conv_w, conv_b))
    relu = OpNode("Relu", (conv,))
    mean = OpNode("Mean", (relu,), keepdim=True)
    view = OpNode("View", (mean,))
    fc = OpNode("Addmm", (fc_b, view, OpNode("T", (fc_w,))))
    used: set = set()
    nodes, covered = walk([fc], used=used)
    assert covered == used == {1, 2, 3, 4}
    graph = build_arch_graph(nodes, s_max=1, name="hand")
    assert _ops(graph) == ["input", "conv", "bias", "glob_avg", "conv", "bias"]
    assert graph.param_names == ["", "conv.weight", "conv.bias", "", "fc.weight", "fc.bias"]
    assert graph.edge_index.tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]  # a chain: relu, view, t contracted


def test_unnamed_leaves_get_no_node_and_unknown_ops_are_contracted():
    x = Param(None, (1, 4), key="x")  # an input that requires grad
    w = Param("w", (4, 4), key="w", attr="weight", op="conv")
    out = OpNode("Tanh", (OpNode("Mm", (x, w)),))
    nodes, covered = walk([out])
    assert covered == {"w"}
    graph = build_arch_graph(nodes, s_max=1, name="mm")
    assert _ops(graph) == ["input", "conv"] and graph.param_names == ["", "w"]


class _Attention(nn.Module):
    """Attention whose forward stops half-way until ``go`` is set (to act while a trace is running)."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.inside, self.go = threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(self.q(x)[:, None], self.k(x)[:, None], self.v(x)[:, None])
        self.inside.set()
        assert self.go.wait(30)
        return out[:, 0]


def _math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, -1) @ v


def _grad_fn_name(t: torch.Tensor) -> str:
    return type(t.grad_fn).__name__


def test_attention_in_another_thread_is_unaffected_by_a_trace():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 8, generator=gen, requires_grad=True) for _ in range(3))
    mq = torch.empty(2, 2, 5, 8, device="meta", requires_grad=True)
    expected_cpu = _grad_fn_name(F.scaled_dot_product_attention(q, k, v))
    expected_meta = _grad_fn_name(F.scaled_dot_product_attention(mq, mq, mq))
    model = _Attention()
    seen: dict[str, object] = {}

    def other_thread() -> None:
        try:
            assert model.inside.wait(30), "the trace never reached attention"
            out = F.scaled_dot_product_attention(q, k, v)
            seen["cpu"] = (_grad_fn_name(out), torch.allclose(out, _math_attention(q, k, v), atol=1e-5))
            seen["meta"] = _grad_fn_name(F.scaled_dot_product_attention(mq, mq, mq))
        finally:
            model.go.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    graph = graph_from_module(model, inputs=torch.randn(3, 5, 8), rules="hyperzoo")
    thread.join(30)
    assert seen["cpu"] == (expected_cpu, True)
    assert seen["meta"] == expected_meta  # the meta kernel acts only in the tracing thread
    assert graph.meta_fallback == "" and "msa" in _ops(graph)  # the trace itself saw flash attention


def test_meta_kernels_see_attention_inside_multi_head_attention():
    """The attention kernel acts at the dispatcher, so it sees SDPA called inside F.multi_head_attention_forward."""
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.empty(1, 5, 8, device="meta")
    params = {k: torch.empty_like(p, device="meta").requires_grad_(True) for k, p in mha.named_parameters()}
    with meta_trace_kernels():
        out, _ = torch.func.functional_call(mha, params, (x, x, x), {"need_weights": False})
    names, stack, seen = set(), [out.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    assert any(n.startswith("ScaledDotProductFlashAttentionForCpu") for n in names)


@pytest.mark.parametrize("rules", ["ghn2", "hyperzoo"])
def test_meta_and_real_traces_agree_on_attention(rules):
    model = nn.Sequential(nn.Linear(8, 8), nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True))
    x = torch.randn(1, 5, 8)
    a = graph_from_module(model, inputs=x, rules=rules)
    b = graph_from_module(model, inputs=x, rules=rules, meta=False)
    assert a.param_names == b.param_names and torch.equal(a.op, b.op) and torch.equal(a.edge_index, b.edge_index)
