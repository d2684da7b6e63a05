"""GHN-2 building blocks: depth-batched GatedGNN vs the node-by-node sweep, shape vocabulary, tiling, normalization,
checkpoint errors and ``ghn(model)``."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.errors import ConfigError, DataError, HyperzooError  # noqa: E402
from hyperzoo.ghn import GHN2, GatedGNN, ShapeEncoder, load_reference_checkpoint, normalize_parameter, tile_to_shape  # noqa: E402
from hyperzoo.ghn.gatedgnn import node_by_node as reference_schedule  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.graphs.arch_graph import ArchGraph  # noqa: E402


def node_by_node(gnn: GatedGNN, x: torch.Tensor, edge_index: torch.Tensor, edge_dist: torch.Tensor) -> torch.Tensor:
    """Eq. 3-4 the plain way: visit nodes one at a time in index (topological) order, then in reverse."""
    h = x.clone()
    src, dst = edge_index
    for _ in range(gnn.T):
        for forward in (True, False):
            for v in range(h.shape[0]) if forward else reversed(range(h.shape[0])):
                into = (dst == v) if forward else (src == v)
                other = src if forward else dst
                m = torch.zeros(1, h.shape[1])
                for e in torch.nonzero(into).view(-1).tolist():
                    u, s = int(other[e]), float(edge_dist[e])
                    if s == 1:
                        m = m + gnn.message(h[u : u + 1])
                    if gnn.ve:
                        m = m + gnn.virtual_message(h[u : u + 1]) / s
                h[v] = gnn.gru(m, h[v : v + 1])[0]
    return h


def small_graph() -> ArchGraph:
    """A residual block with a parallel branch: several nodes share a depth, and virtual edges up to distance 5."""
    ops = ["input", "conv", "bn", "conv", "bn", "conv", "sum", "conv", "bias", "glob_avg"]
    names = ["", "c1", "b1", "c2", "b2", "down", "", "fc", "fc_b", ""]
    shapes = [None, (8, 3, 3, 3), (8,), (8, 8, 3, 3), (8,), (8, 3, 1, 1), None, (10, 8), (10,), None]
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (4, 6), (5, 6), (6, 9), (9, 7), (7, 8)]
    return ArchGraph.from_dag(ops, names, shapes, edges, name="small")


@pytest.mark.parametrize("ve", [True, False])
def test_depth_batched_gnn_equals_node_by_node(ve):
    torch.manual_seed(0)
    g = small_graph()
    assert int(g.edge_dist.max()) > 1
    gnn = GatedGNN(16, ve=ve)
    x = torch.randn(len(g.param_names), 16)
    edge_index, edge_dist = g.edge_index, g.edge_dist
    if not ve:
        keep = edge_dist == 1
        edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
    with torch.no_grad():
        expected = node_by_node(gnn, x, edge_index, edge_dist)
        got = gnn(x, g.edge_index, g.edge_dist)
        masked = reference_schedule(gnn, x, g.edge_index, g.edge_dist)  # the benchmark's baseline
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(masked, expected, rtol=1e-5, atol=1e-6)


def test_depth_batched_gnn_on_resnet_graph():
    from hyperzoo.nets import create_model

    torch.manual_seed(1)
    g = graph_from_module(create_model("resnet18", num_classes=10, adapt_cifar=True))
    gnn = GatedGNN(8, ve=True)
    x = torch.randn(len(g.param_names), 8)
    with torch.no_grad():
        torch.testing.assert_close(
            gnn(x, g.edge_index, g.edge_dist), node_by_node(gnn, x, g.edge_index, g.edge_dist), rtol=1e-5, atol=1e-6
        )


def test_shape_vocabulary_and_snapping():
    enc = ShapeEncoder(32, 10, (64, 64, 11, 11))
    assert len(enc.channels) == 391 and enc.spatial == [1, 3, 5, 7, 9, 11, 14, 16]
    shapes = torch.tensor([[5, 3, 2, 4], [10, 8192, 13, 16], [9000, 72, 1, 99], [0, 0, 0, 0], [2, 81, 1, 1]])
    idx = enc.shape_indices(shapes, torch.tensor([True, True, True, False, True]))
    ch, sp = enc.channels, enc.spatial
    assert [ch[int(i)] for i in idx[0, :2]] == [8, 3]  # 4..7 channels -> 8
    assert [sp[int(i)] for i in idx[0, 2:]] == [3, 3]  # 2 -> 3, 4 -> 3 (nearest, smaller on a tie)
    assert [ch[int(i)] for i in idx[1, :2]] == [10, 8192] and [sp[int(i)] for i in idx[1, 2:]] == [14, 16]
    assert [ch[int(i)] for i in idx[2, :2]] == [8192, 64] and [sp[int(i)] for i in idx[2, 2:]] == [1, 16]
    assert idx[3].tolist() == [391, 391, 8, 8]  # the dummy row
    assert [ch[int(i)] for i in idx[4, :2]] == [1, 80]


def test_tiling_repeats_channels_and_crops():
    w = torch.arange(2 * 3 * 4 * 4, dtype=torch.float).view(2, 3, 4, 4)
    t = tile_to_shape(w, (5, 7, 3, 3))
    assert t.shape == (5, 7, 3, 3)
    assert torch.equal(t[4, 6], w[0, 0, :3, :3]) and torch.equal(t[3, 4], w[1, 1, :3, :3])
    assert torch.equal(tile_to_shape(torch.arange(4.0), (10,)), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1.0]))


def test_normalization():
    p = torch.randn(4, 6, 3, 3)
    torch.testing.assert_close(normalize_parameter(p, True), p * (2 / 54) ** 0.5)
    dw = torch.randn(4, 1, 3, 3)
    torch.testing.assert_close(normalize_parameter(dw, True), dw * (1 / 9) ** 0.5)
    v = torch.randn(5)
    torch.testing.assert_close(normalize_parameter(v, True), 2 * torch.sigmoid(v / 2))
    torch.testing.assert_close(normalize_parameter(v, False), torch.tanh(v / 5))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(DataError):
        load_reference_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError):
        load_reference_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, plain)
    with pytest.raises(DataError, match="state_dict"):
        load_reference_checkpoint(plain)
    mlp = tmp_path / "mlp.pt"
    cfg = {"max_shape": (64, 64, 11, 11), "num_classes": 10, "hypernet": "gatedgnn", "decoder": "mlp", "hid": 32}
    torch.save({"state_dict": {}, "epoch": 0, "config": cfg}, mlp)
    with pytest.raises(ConfigError, match="decoder"):
        load_reference_checkpoint(mlp)
    assert issubclass(DataError, HyperzooError) and issubclass(ConfigError, HyperzooError)


def test_round_trip_of_own_state_in_reference_format(tmp_path):
    torch.manual_seed(0)
    ghn = GHN2(hid=16, max_shape=(16, 16, 3, 3))
    inverse = {v: k for k, v in __import__("hyperzoo.ghn.checkpoint", fromlist=["x"]).REFERENCE_KEY_MAP.items()}
    state = {}
    for key, value in ghn.state_dict().items():
        prefix = next(p for p in inverse if key.startswith(p))
        state[inverse[prefix] + key[len(prefix) :]] = value
    cfg = {"max_shape": (16, 16, 3, 3), "num_classes": 10, "hypernet": "gatedgnn", "decoder": "conv", "hid": 16}
    cfg.update(weight_norm=True, ve=True, layernorm=True)
    path = tmp_path / "ghn.pt"
    torch.save({"state_dict": state, "epoch": 3, "config": cfg}, path)
    loaded = load_reference_checkpoint(path)
    for a, b in zip(ghn.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)
        self.expected_input_size = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_predict_keeps_autograd_and_call_fills_model():
    torch.manual_seed(0)
    ghn = GHN2(hid=16, max_shape=(16, 16, 3, 3))
    net = TinyNet()
    pred = ghn.predict_parameters(net)
    assert sorted(pred) == sorted(n for n, _ in net.named_parameters())
    assert all(pred[n].shape == p.shape for n, p in net.named_parameters())
    sum(p.sum() for p in pred.values()).backward()
    assert ghn.decoder.fc.weight.grad is not None and ghn.op_embed.weight.grad is not None

    ghn.eval()
    with torch.no_grad():
        out = ghn(net)
    assert out is net
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.data, pred[name].detach())
        assert isinstance(p, nn.Parameter)
    assert net.bn.training and not net.bn.track_running_stats

    ghn.train()
    net2 = TinyNet()
    ghn(net2)
    loss = net2(torch.randn(2, 3, 8, 8)).sum()
    ghn.zero_grad()
    loss.backward()
    assert ghn.decoder.conv2.weight.grad is not None


def test_graph_without_model_is_an_error():
    ghn = GHN2(hid=16, max_shape=(16, 16, 3, 3))
    with pytest.raises(HyperzooError, match="needs the network"):
        ghn.predict_parameters(small_graph())


def test_ops_outside_the_reference_vocabulary_are_an_error():
    g = small_graph()
    g.op = g.op.clone()
    g.op[1] = 15
    with pytest.raises(HyperzooError, match="cannot predict ops"):
        GHN2(hid=16, max_shape=(16, 16, 3, 3)).embed_nodes(g)


def test_batched_prediction_equals_one_by_one():
    from hyperzoo.ghn import create_ghn
    from hyperzoo.nets import create_model

    torch.manual_seed(0)
    for name in ("ghn2", "ghn3_t"):
        extra = {"layers": 1, "heads": 2} if name == "ghn3_t" else {}
        ghn = create_ghn(name, hid=16, max_shape=(16, 16, 3, 3), **extra).eval()
        nets = [create_model("resnet20"), TinyNet(), create_model("resnet8", width=2)]
        with torch.no_grad():
            batched = ghn.predict_batch(nets)
            single = [ghn.predict_parameters(n) for n in nets]
        for a, b in zip(batched, single):
            assert a.keys() == b.keys()
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_unpredictable_layers_are_named_or_skipped():
    from hyperzoo.ghn import UnpredictableLayerError, create_ghn
    from hyperzoo.nets import create_model

    vit = create_model("vit_b_16", num_classes=10, adapt_cifar=True)
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)).eval()  # the reference's 15 ops
    with pytest.raises(UnpredictableLayerError, match="class_token"):
        ghn.predict_parameters(vit)
    with pytest.warns(UserWarning, match="unpredicted"), torch.no_grad():
        pred = ghn.predict_parameters(vit, skip_unknown=True)
    params = dict(vit.named_parameters())
    assert "class_token" not in pred and "encoder.pos_embedding" in pred
    assert len(pred) == len(params) - 1 and all(pred[k].shape == params[k].shape for k in pred)


def test_shapes_beyond_the_decoder_are_tiled():
    from hyperzoo.ghn import create_ghn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 40, 5), nn.BatchNorm2d(40), nn.Flatten(), nn.LazyLinear(10))
    net(torch.randn(2, 3, 8, 8))
    net.expected_input_size = 8
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), weight_norm=False).eval()
    with torch.no_grad():
        w = ghn.predict_parameters(net)["0.weight"]  # 40 x 3 x 5 x 5 from a 16 x 16 x 3 x 3 decoder
    assert w.shape == (40, 3, 5, 5)
    torch.testing.assert_close(w[16:32], w[:16])  # out-channels repeat every 16
    torch.testing.assert_close(w[:, :, 3:, 3:], w[:, :, :2, :2])  # kernels repeat every 3 positions
