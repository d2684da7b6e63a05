"""Weight sharing: one node per use, a DAG, one prediction per shared tensor (the first use's)."""

import contextlib
import io

import pytest
import torch
from torch import nn

from hyperzoo.ghn import create_ghn
from hyperzoo.graphs import PRIMITIVES, graph_from_module
from hyperzoo.graphs.sharing import first_uses, tied_uses


class ConvTwice(nn.Module):
    """The two-line model that used to close a cycle: one convolution applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.stem = nn.Conv2d(3, 4, 1)
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        x = self.conv(torch.relu(self.conv(self.stem(x))))
        return self.head(x.mean((2, 3)))


class TiedLM(nn.Module):
    """An embedding whose table is also the classifier's weight."""

    def __init__(self, vocab: int = 11, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, idx):
        return self.out(torch.tanh(self.mix(self.embed(idx))))


class Unrolled(nn.Module):
    """A recurrent cell unrolled over four steps (the same weights at every step)."""

    def __init__(self, dim: int = 5, steps: int = 4) -> None:
        super().__init__()
        self.inp = nn.Linear(3, dim)
        self.cell = nn.Linear(2 * dim, dim)
        self.steps = steps
        self.head = nn.Linear(dim, 2)

    def forward(self, x):
        u = self.inp(x)
        h = torch.zeros_like(u)
        for _ in range(self.steps):
            h = torch.tanh(self.cell(torch.cat((u, h), dim=1)))
        return self.head(h)


CASES = {
    "conv_twice": (ConvTwice, lambda: {"input_size": 8}, {"conv.weight": 2, "conv.bias": 2}),
    "tied": (TiedLM, lambda: {"inputs": torch.randint(0, 11, (2, 7))}, {"embed.weight": 2}),
    "unrolled": (Unrolled, lambda: {"inputs": torch.randn(2, 3)}, {"cell.weight": 4, "cell.bias": 4}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_node_per_use_in_a_dag(case, accounted):
    make, inputs, counts = CASES[case]
    model = make()
    g = graph_from_module(model, **inputs())  # used to raise "the graph has a cycle"
    assert accounted(model, g) and g.unmapped == []
    assert {k: len(v) for k, v in tied_uses(g).items()} == counts
    src, dst = g.real_edges()
    assert bool((src < dst).all())  # nodes in topological order: a DAG
    real = graph_from_module(model, meta=False, **inputs())
    assert real.to_json_dict() == g.to_json_dict()


def test_tied_uses_keep_the_op_of_their_module():
    g = graph_from_module(ConvTwice(), input_size=8)
    ops = [op for n, op in zip(g.param_names, g.op_names) if n == "conv.weight"]
    assert ops == ["conv", "conv"]


def test_first_use_rule():
    assert first_uses(["", "a", "b", "a", "", "b"], [False, True, True, True, False, True]) == [
        False, True, True, False, False, False,
    ]  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_ghn_predicts_a_shared_tensor_once_and_fills_a_consistent_model(case):
    make, inputs, _ = CASES[case]
    torch.manual_seed(0)
    model = make()
    kwargs = inputs()
    graph = graph_from_module(model, **kwargs)
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_ops=len(PRIMITIVES), num_classes=10).eval()
    with torch.no_grad():
        pred = ghn.predict_parameters(graph, model)
        assert set(pred) == {n for n, _ in model.named_parameters()}
        ghn(model, graph)
    for name, p in model.named_parameters():
        assert torch.equal(p, pred[name]) and bool(torch.isfinite(p).all())
    if case == "tied":
        assert model.out.weight is model.embed.weight  # still one tensor
    x = kwargs.get("inputs")
    out = model(x if x is not None else torch.randn(2, 3, 8, 8))
    assert bool(torch.isfinite(out).all())


def test_the_first_use_is_the_one_predicted():
    """The prediction of a shared tensor is the decoder's output for its first node, not a later use's."""
    model = ConvTwice()
    graph = graph_from_module(model, input_size=8)
    first, second = tied_uses(graph)["conv.weight"]
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_ops=len(PRIMITIVES), num_classes=10).eval()
    with torch.no_grad():
        x = ghn.embed_nodes(graph)
        pred = ghn.predict_parameters(graph, model)["conv.weight"]
        expected = ghn._finish(ghn.decoder(x[first : first + 1], (3, 3))[0], model.conv.weight.shape, True)
        other = ghn._finish(ghn.decoder(x[second : second + 1], (3, 3))[0], model.conv.weight.shape, True)
    torch.testing.assert_close(pred, expected)
    assert not torch.allclose(expected, other)


def test_onnx_shared_initializer_gives_one_node_per_use():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from hyperzoo.graphs.onnx import graph_from_onnx

    model = ConvTwice().eval()
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        proto = torch.onnx.export(model, (torch.randn(2, 3, 8, 8),), dynamo=True, optimize=False).model_proto
    g = graph_from_onnx(proto)
    assert {k: len(v) for k, v in tied_uses(g).items()} == {"conv.weight": 2, "conv.bias": 2}
    ref = graph_from_module(model, input_size=8)
    assert g.op_names == ref.op_names and g.param_names == ref.param_names


class Aliased(nn.Module):
    """One module registered under two names (CoaT's shared MLPs), each name called once."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp2 = self.mlp3 = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.mlp2(x) + self.mlp3(torch.relu(x)))


def test_meta_trace_leaves_an_aliased_module_intact():
    model = Aliased()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = graph_from_module(model, inputs=torch.randn(2, 4))
    assert g.meta_fallback == "" and {k: len(v) for k, v in tied_uses(g).items()} == {"mlp2.weight": 2, "mlp2.bias": 2}
    for name, p in model.named_parameters(remove_duplicate=False):
        assert p.device.type == "cpu" and torch.equal(p, before[name.replace("mlp3", "mlp2")]), name
    assert model.mlp2 is model.mlp3


def test_training_mode_replaces_a_tied_tensor_everywhere():
    model = TiedLM()
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_ops=len(PRIMITIVES), num_classes=10).train()
    ghn(model, graph_from_module(model, inputs=torch.randint(0, 11, (2, 7))))
    assert model.out.weight is model.embed.weight and model.embed.weight.grad_fn is not None
    model(torch.randint(0, 11, (2, 7))).sum().backward()
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in ghn.parameters())
