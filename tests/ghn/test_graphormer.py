"""GHN-3 building blocks: the Graphormer encoder (padding, batching, distance bias, AMP) and ConvDecoder3."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.ghn.decoder3 import ConvDecoder3, centre_slice, tile_to_shape_centered  # noqa: E402
from hyperzoo.ghn.graphormer import MASK_VALUE, Graphormer, sinusoidal_table  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.graphs.arch_graph import ArchGraph  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402

HID = 32


def small_graph() -> ArchGraph:
    """10 nodes, a residual block with a parallel branch; virtual edges up to distance 5."""
    ops = ["input", "conv", "bn", "conv", "bn", "conv", "sum", "conv", "bias", "glob_avg"]
    names = ["", "c1", "b1", "c2", "b2", "down", "", "fc", "fc_b", ""]
    shapes = [None, (8, 3, 3, 3), (8,), (8, 8, 3, 3), (8,), (8, 3, 1, 1), None, (10, 8), (10,), None]
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (4, 6), (5, 6), (6, 9), (9, 7), (7, 8)]
    return ArchGraph.from_dag(ops, names, shapes, edges, name="small")


@pytest.fixture(scope="module")
def graphs() -> list[ArchGraph]:
    return [graph_from_module(create_model("resnet20")), small_graph()]


def batch(gs: list[ArchGraph]) -> Batch:
    """PyG batch of the graphs' structure (graphs built differently carry different extra attributes)."""
    return Batch.from_data_list(
        [Data(edge_index=g.edge_index, edge_dist=g.edge_dist, num_nodes=g.num_nodes) for g in gs]
    )


def encode(model: Graphormer, gs: list[ArchGraph], xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Runs ``model`` on the batch of ``gs`` and splits the output per graph."""
    b = batch(gs)
    out = model(torch.cat(xs), b.edge_index, b.edge_dist, b.ptr)
    return list(out.split([int(g.num_nodes) for g in gs]))


def features(gs: list[ArchGraph], seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(int(g.num_nodes), HID, generator=gen) for g in gs]


def plain_graphormer(model: Graphormer, x: torch.Tensor, g: ArchGraph) -> torch.Tensor:
    """The module's math for one graph written out directly: dense matrices, explicit softmax, every head by hand."""
    n, d = x.shape
    dist = torch.zeros(n, n, dtype=torch.long)
    dist[g.edge_index[0], g.edge_index[1]] = g.edge_dist
    real = (dist == 1).long()
    x = x + model.degree_in_embed(real.sum(0)) + model.degree_out_embed(real.sum(1)) + model.input_dist_embed(dist[0])
    pair = torch.cat([model.edge_embed(dist + 2), model.edge_embed(dist.t() + 2)], dim=-1)  # [N, N, 2d]
    bias = model.edge_proj(pair)  # [N, N, H]
    for layer in model.layers:
        q, k, v = layer.qkv(layer.ln1(x)).chunk(3, dim=-1)
        dh = d // model.heads
        heads = []
        for h in range(model.heads):
            cols = slice(h * dh, (h + 1) * dh)
            logits = q[:, cols] @ k[:, cols].t() / dh**0.5 + bias[:, :, h]
            heads.append(torch.softmax(logits, dim=-1) @ v[:, cols])
        x = x + layer.out(torch.cat(heads, dim=-1))
        x = x + layer.ffn(layer.ln2(x))
    return x


# ---------------------------------------------------------------------------------------------------- Graphormer
def test_matches_plain_statement_of_the_math(graphs):
    torch.manual_seed(0)
    model = Graphormer(HID, layers=2, heads=4).eval()
    xs = features(graphs)
    with torch.no_grad():
        out = encode(model, graphs, xs)
        for g, x, o in zip(graphs, xs, out):
            torch.testing.assert_close(o, plain_graphormer(model, x, g), rtol=1e-4, atol=1e-5)


def test_output_shape_and_structure_encodings(graphs):
    torch.manual_seed(0)
    model = Graphormer(HID, layers=2, heads=4).eval()
    xs = features(graphs)
    b = batch(graphs)
    out = model(torch.cat(xs), b.edge_index, b.edge_dist, b.ptr)
    assert out.shape == (sum(int(g.num_nodes) for g in graphs), HID)
    assert torch.isfinite(out).all()
    # structural encoding of the small graph by hand: degrees over real edges, distance from node 0
    g = graphs[1]
    dense = torch.zeros(10, 10, dtype=torch.long)
    dense[g.edge_index[0], g.edge_index[1]] = g.edge_dist
    real = (dense == 1).long()
    expect = model.degree_in_embed(real.sum(0)) + model.degree_out_embed(real.sum(1)) + model.input_dist_embed(dense[0])
    got = model.structural_encoding(g.edge_index, g.edge_dist, torch.tensor([0, 10]), 10)
    torch.testing.assert_close(got, expect)


def test_batch_equals_each_graph_alone(graphs):
    """Padding the 10-node graph to 51 rows must not change its embeddings (masked keys)."""
    torch.manual_seed(0)
    model = Graphormer(HID, layers=3, heads=8).eval()
    xs = features(graphs)
    with torch.no_grad():
        together = encode(model, graphs, xs)
        alone = [encode(model, [g], [x])[0] for g, x in zip(graphs, xs)]
    for a, b in zip(together, alone):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_graph_order_in_batch(graphs):
    torch.manual_seed(0)
    model = Graphormer(HID, layers=2, heads=4).eval()
    gs = [graphs[0], graphs[1], graph_from_module(create_model("resnet32"))]
    xs = features(gs)
    perm = [2, 0, 1]
    with torch.no_grad():
        out = encode(model, gs, xs)
        out_perm = encode(model, [gs[p] for p in perm], [xs[p] for p in perm])
    for j, p in enumerate(perm):
        torch.testing.assert_close(out_perm[j], out[p], rtol=1e-5, atol=1e-5)


def test_attention_bias_is_direction_aware():
    torch.manual_seed(0)
    model = Graphormer(HID, layers=1, heads=4)
    dist = torch.zeros(1, 3, 3, dtype=torch.long)
    dist[0, 0, 1], dist[0, 1, 2], dist[0, 0, 2] = 1, 1, 2
    with torch.no_grad():
        bias = model.attention_bias(dist)[0]  # [H, N, N]
        h = model.edge_proj(torch.cat([model.edge_embed.weight[dist[0, 0, 2] + 2], model.edge_embed.weight[2]]))
    assert bias.shape == (4, 3, 3)
    torch.testing.assert_close(bias[:, 0, 2], h)  # forward distance first, backward second
    assert not torch.allclose(bias[:, 0, 1], bias[:, 1, 0])  # u -> v differs from v -> u
    assert not torch.allclose(bias[:, 1, 0], bias[:, 1, 1])  # the backward direction is not "no edge"


def test_virtual_edge_distance_reaches_both_endpoints(graphs):
    """One layer: changing the distance of a virtual edge (u, v), u != input, changes exactly rows u and v.

    Row u sees it through the forward channel of bias[u, v], row v only through the backward channel of bias[v, u].
    """
    torch.manual_seed(0)
    g = graphs[1]
    model = Graphormer(HID, layers=1, heads=4).eval()
    x = features([g])[0]
    e = int(torch.nonzero((g.edge_dist > 1) & (g.edge_index[0] > 0))[0])
    u, v = g.edge_index[:, e].tolist()
    changed = g.edge_dist.clone()
    changed[e] += 7
    ptr = torch.tensor([0, int(g.num_nodes)])
    with torch.no_grad():
        out = model(x, g.edge_index, g.edge_dist, ptr)
        out2 = model(x, g.edge_index, changed, ptr)
    diff = (out - out2).abs().amax(dim=1)
    assert diff[u] > 1e-4 and diff[v] > 1e-4
    others = torch.ones_like(diff, dtype=torch.bool)
    others[[u, v]] = False
    assert diff[others].max() < 1e-6


def test_gradients_reach_every_parameter(graphs):
    torch.manual_seed(0)
    model = Graphormer(HID, layers=3, heads=8)
    xs = [x.requires_grad_() for x in features(graphs)]
    out = torch.cat(encode(model, graphs, xs))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(x.grad.abs().sum() > 0 for x in xs)


def test_parameter_count_matches_ghn3_t():
    """GHN-3-T/m8 (hid 64, 3 layers, 8 heads): 251,592 parameters in the reference's gnn + degree/distance tables."""
    assert sum(p.numel() for p in Graphormer(64, layers=3, heads=8).parameters()) == 251_592


def test_edge_table_is_sinusoidal():
    t = sinusoidal_table(257, 64)
    torch.testing.assert_close(Graphormer(64).edge_embed.weight.detach(), t)
    torch.testing.assert_close(t[3, 0:2], torch.tensor([torch.sin(torch.tensor(3.0)), torch.cos(torch.tensor(3.0))]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_with_padding_is_finite(graphs, dtype):
    assert torch.finfo(torch.float16).min < MASK_VALUE  # the padding offset is representable
    torch.manual_seed(0)
    model = Graphormer(HID, layers=3, heads=8).eval()
    xs = features(graphs)
    with torch.no_grad():
        ref = torch.cat(encode(model, graphs, xs))
        with torch.autocast("cpu", dtype=dtype):
            out = torch.cat(encode(model, graphs, xs))
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()


# ---------------------------------------------------------------------------------------------------- ConvDecoder3
@pytest.fixture(scope="module")
def decoder() -> ConvDecoder3:
    torch.manual_seed(0)
    return ConvDecoder3(16, (8, 12), (6, 5, 11, 11), num_classes=7).eval()


@pytest.mark.parametrize("k", [1, 3, 5, 7, 11])
def test_decoder_centre_crop(decoder, k):
    x = torch.randn(4, 16)
    with torch.no_grad():
        full = decoder(x, (11, 11))
        w = decoder(x, (k, k))
    assert w.shape == (4, 6, 5, k, k)
    lo = 5 - k // 2
    torch.testing.assert_close(w, full[..., lo : lo + k, lo : lo + k])


def test_decoder_non_square_and_interpolated(decoder):
    x = torch.randn(3, 16)
    with torch.no_grad():
        full = decoder(x, (11, 11))
        assert decoder(x, (1, 3)).shape == (3, 6, 5, 1, 3)
        w13 = decoder(x, (13, 13))
        w13x3 = decoder(x, (13, 3))
    assert w13.shape == (3, 6, 5, 13, 13)
    expect = F.interpolate(full.reshape(3, 30, 11, 11), size=(13, 13), mode="bilinear", align_corners=False)
    torch.testing.assert_close(w13, expect.view(3, 6, 5, 13, 13))
    assert w13x3.shape == (3, 6, 5, 13, 3)


def test_decoder_classifier_from_centre(decoder):
    x = torch.randn(2, 16)
    with torch.no_grad():
        w = decoder(x, class_pred=True)
        centre = decoder(x, (11, 11))[..., 5, 5]  # [N, o, i]
        expect = torch.einsum("co,noi->nci", decoder.class_conv.weight, F.relu(centre))
        expect = expect + decoder.class_conv.bias[None, :, None]
    assert w.shape == (2, 7, 5)
    torch.testing.assert_close(w, expect)


def test_decoder_init_and_sizes():
    dec = ConvDecoder3(64, (256, 512), (64, 64, 16, 16), num_classes=1000)
    ref = torch.nn.Linear(512, 64 * 64)
    assert dec.conv2.bias.abs().sum() == 0 and dec.class_conv.bias.abs().sum() == 0
    assert dec.conv2.weight.abs().max() <= ref.weight.abs().max() / 5 + 1e-6
    # GHN-3-T: fc + conv1 + conv2 + class head; the reference digest's "decoder 6,582,504" adds decoder_1d (24,832)
    assert sum(p.numel() for p in dec.parameters()) == 6_582_504 - 24_832


def test_centre_slice():
    assert centre_slice(16, 1) == slice(8, 9)
    assert centre_slice(16, 3) == slice(7, 10)
    assert centre_slice(11, 4) == slice(3, 7)
    assert centre_slice(11, 20) == slice(0, 11)


def test_tile_to_shape_centered():
    w = torch.arange(2 * 3 * 5 * 5).float().view(2, 3, 5, 5)
    out = tile_to_shape_centered(w, (5, 7, 3, 3))
    assert out.shape == (5, 7, 3, 3)
    torch.testing.assert_close(out[:2, :3], w[:, :, 1:4, 1:4])
    torch.testing.assert_close(out[2:4, 3:6], w[:, :, 1:4, 1:4])  # repeated along out and in channels
    torch.testing.assert_close(tile_to_shape_centered(w, (2, 2)), w[:, :2, 2, 2])  # linear weight: centre
    torch.testing.assert_close(tile_to_shape_centered(w, (4,)), w[:, 0, 2, 2].repeat(2))
    torch.testing.assert_close(tile_to_shape_centered(w[:, :, :, 0], (2, 3, 9))[..., 5:], w[:, :, :4, 0])
    with pytest.raises(ValueError, match="kernel larger"):
        tile_to_shape_centered(w, (2, 3, 7, 7))
    with pytest.raises(ValueError, match="rank mismatch"):
        tile_to_shape_centered(w[0, 0], (2, 3, 5, 5))
