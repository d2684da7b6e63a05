import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.graphs import UnmappedModuleError, graph_from_module


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


def test_small_model_graph(accounted):
    model = Small()
    g = graph_from_module(model, input_size=8)
    assert g.op_names == ["input", "conv", "bias", "bn", "conv", "bias"]
    assert g.param_names == ["", "conv.weight", "conv.bias", "bn.weight", "fc.weight", "fc.bias"]
    assert g.real_edges().t().tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    assert g.shape[1].tolist() == [8, 3, 3, 3] and g.shape[4].tolist() == [4, 8, 1, 1]
    assert g.unmapped == [] and g.num_params == sum(p.numel() for p in model.parameters())
    assert g.input_size == [3, 8, 8] and g.name == "Small"
    assert accounted(model, g)


def test_under_no_grad_mode_buffers_and_rng_untouched():
    model = Small().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    with torch.no_grad():
        g = graph_from_module(model, input_size=8)
        real = graph_from_module(model, input_size=8, meta=False)  # a real forward updates no running statistic
    assert torch.rand(1) == expected
    assert g.num_nodes == real.num_nodes == 6 and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    model.eval()
    with torch.inference_mode(False), torch.no_grad():
        assert graph_from_module(model, input_size=8).num_nodes == 6
    assert not model.training


def test_deep_chain_has_no_recursion_limit():
    model = nn.Sequential(*[nn.Linear(4, 4, bias=False) for _ in range(3000)])
    g = graph_from_module(model, inputs=torch.randn(2, 4), s_max=1)
    assert g.num_nodes == 3001
    assert g.op_names.count("conv") == 3000
    assert g.param_names[-1] == "2999.weight"


class TwoHeads(nn.Module):
    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        self.as_dict = as_dict
        self.a = nn.Linear(6, 5)
        self.b = nn.Linear(7, 5)
        self.head1 = nn.Linear(5, 2)
        self.head2 = nn.Linear(5, 3)

    def forward(self, x, y):
        h = self.a(x) + self.b(y)
        out1, out2 = self.head1(h), self.head2(h)
        return {"first": out1, "second": [out2]} if self.as_dict else (out1, out2)


@pytest.mark.parametrize("as_dict", [False, True])
def test_several_inputs_and_outputs(as_dict, accounted):
    model = TwoHeads(as_dict)
    g = graph_from_module(model, inputs=(torch.randn(2, 6), torch.randn(2, 7)))
    assert accounted(model, g) and g.unmapped == []
    assert g.op_names.count("sum") == 1 and g.op_names.count("input") == 1
    names = g.param_names
    real = set(map(tuple, g.real_edges().t().tolist()))
    # the input feeds both first layers; the sum feeds both heads
    assert (0, names.index("a.weight")) in real and (0, names.index("b.weight")) in real
    s = g.op_names.index("sum")
    assert (s, names.index("head1.weight")) in real and (s, names.index("head2.weight")) in real
    kw = graph_from_module(model, inputs={"x": torch.randn(2, 6), "y": torch.randn(2, 7)})
    assert kw.to_json_dict() == g.to_json_dict()


class WithCustom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.scale = Scale()
        self.frozen = nn.Conv2d(4, 4, 1)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        return self.frozen(self.scale(self.conv(x)))


class Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(4, 1, 1))

    def forward(self, x):
        return x * self.alpha


class Sorted(nn.Module):
    """A parameter used in a way no role rule knows (sorted before it is added)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(4, 1, 1))

    def forward(self, x):
        return x + torch.sort(self.table, dim=0)[0]


def test_inferred_roles_and_unmapped_parameters(accounted):
    model = WithCustom()
    g = graph_from_module(model, input_size=4)
    assert g.unmapped == [] and accounted(model, g)
    assert g.op_names[g.param_names.index("scale.alpha")] == "layer_scale"  # x * alpha: a channel-wise scale
    assert "frozen.weight" in g.param_names  # frozen parameters still get a node
    assert not model.frozen.weight.requires_grad

    model.scale = Sorted()
    with pytest.raises(
        UnmappedModuleError, match=r"scale\.table: module scale \(Sorted\), shape \[4, 1, 1\].*param_ops"
    ):
        graph_from_module(model, input_size=4)  # strict by default
    g = graph_from_module(model, input_size=4, strict=False)
    assert g.unmapped == ["scale.table"] and g.unmapped_modules == ["scale (Sorted)"]
    assert accounted(model, g)
    mapped = graph_from_module(model, input_size=4, param_ops={"scale.*": "param"})
    assert "param" in mapped.op_names and mapped.unmapped == []


def test_user_errors_are_hyperzoo_errors():
    with pytest.raises(ConfigError, match="bad input size"):
        graph_from_module(Small(), input_size=0)
    with pytest.raises(ConfigError, match="bad input size"):
        graph_from_module(Small(), input_size=(1, 2, 3, 4))
    with pytest.raises(HyperzooError, match="forward pass of Small failed"):
        graph_from_module(Small(), input_size=(5, 8, 8))
    with pytest.raises(HyperzooError, match="no output"):
        graph_from_module(nn.Identity(), inputs=torch.randn(2, 2))


def test_shared_parameters_get_one_node_per_use():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    g = graph_from_module(model, inputs=torch.randn(2, 4))
    assert g.param_names.count("0.weight") == 2 and g.param_names.count("0.bias") == 2 and g.unmapped == []


def test_squeeze_excitation_and_pooling_nodes():
    from torchvision.ops import SqueezeExcitation

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), SqueezeExcitation(8, 4), nn.AvgPool2d(3))
    g = graph_from_module(model, input_size=16, rules="hyperzoo")
    assert "cse" in g.op_names and "glob_avg" in g.op_names
    # the reference GHN-2 rules (default): no node for the excitation product; the block input (the max pool)
    # and the second 1x1 conv's bias both feed the next node directly
    ref = graph_from_module(model, input_size=16)
    assert "cse" not in ref.op_names and "glob_avg" in ref.op_names
    assert ref.num_nodes == g.num_nodes - 1
    pool, bias, after = (
        ref.op_names.index("max_pool"),
        ref.param_names.index("2.fc2.bias"),
        ref.op_names.index("avg_pool"),
    )
    real = {tuple(e) for e, d in zip(ref.edge_index.t().tolist(), ref.edge_dist.tolist()) if d == 1}
    assert {(pool, after), (bias, after)} <= real
    with pytest.raises(ConfigError, match="unknown graph rules"):
        graph_from_module(model, input_size=16, rules="ppuda")
    i = g.op_names.index("max_pool")
    assert g.param_names[i] == "max_pool" and g.shape[i].tolist() == [1, 1, 2, 2]
    assert g.shape[g.op_names.index("avg_pool")].tolist() == [1, 1, 3, 3]


def test_a_forward_that_raises_is_reported_with_its_cause():
    class Broken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("the model needs a mask argument")

    with pytest.raises(HyperzooError, match=r"forward pass of .* failed .*needs a mask argument") as info:
        graph_from_module(Broken(), inputs=torch.randn(2, 4))
    assert isinstance(info.value.__cause__, ValueError)  # the original error is chained


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "squeezenet1_1", "vit_b_16", "swin_t", "densenet121"])
def test_meta_trace_gives_the_same_graph(name):
    from hyperzoo.nets import create_model

    model = create_model(name, num_classes=10, adapt_cifar=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, b = graph_from_module(model, meta=True), graph_from_module(model, meta=False)
    assert a.param_names == b.param_names
    for key in ("op", "shape", "edge_index", "edge_dist"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing of the model changed


def test_meta_trace_kernels_are_undone():
    """The trace's meta kernels (batch norm, attention) are active only inside it."""
    import torch.nn.functional as F

    sdpa = F.scaled_dot_product_attention
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    graph_from_module(model, input_size=8)
    assert F.scaled_dot_product_attention is sdpa
    x = torch.empty(2, 4, 5, 5, device="meta").contiguous(memory_format=torch.channels_last)
    out = F.batch_norm(x, None, None, training=True)
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    # and a real CPU batch norm is untouched
    y = torch.randn(3, 4, 2, 2)
    assert torch.allclose(F.batch_norm(y, None, None, training=True).mean((0, 2, 3)), torch.zeros(4), atol=1e-6)
