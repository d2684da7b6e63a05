"""The fast prediction paths give what the plain ones give: tiling into a tensor, the GatedGNN without autograd."""

from __future__ import annotations

import warnings

import pytest
import torch

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.ghn import GHN2, GatedGNN, tile_to_shape  # noqa: E402
from hyperzoo.ghn.decoder import tile_into  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402


def repeat_tile(w: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The reference's tiling: crop, repeat one block more than needed, crop."""
    w = w[tuple(slice(0, min(a, b)) for a, b in zip(shape, w.shape))]
    reps = [a // b + 1 if a > b else 1 for a, b in zip(shape, w.shape)]
    return w.repeat(*reps)[tuple(slice(0, v) for v in shape)]


@pytest.mark.parametrize(
    "block, target",
    [
        ((4, 3, 3, 3), (8, 9, 3, 3)),  # whole blocks
        ((4, 3, 3, 3), (10, 7, 1, 1)),  # partial blocks and a spatial crop
        ((4, 3, 5, 5), (2, 2, 7, 3)),  # crop channels, tile a kernel
        ((6, 4), (13, 8)),
        ((5,), (12,)),
        ((4, 3, 3, 3), (4, 3, 3, 3)),  # nothing to do
    ],
)
def test_tiling_equals_repeat_and_tile_into(block, target):
    torch.manual_seed(0)
    w = torch.randn(block)
    expected = repeat_tile(w, target)
    assert torch.equal(tile_to_shape(w, target), expected)
    out = torch.full(target, float("nan"))
    assert tile_into(out, w) is out and torch.equal(out, expected)
    strided = torch.full(tuple(reversed(target)), float("nan")).permute(*reversed(range(len(target))))
    assert torch.equal(tile_into(strided, w), expected)  # a non-contiguous target takes the copying path
    view = torch.randn(block[0] * 2, *block[1:])[::2]  # a strided prediction
    assert torch.equal(tile_to_shape(view, target), repeat_tile(view, target))


def test_tiling_keeps_the_gradient_of_repeat():
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    g = torch.randn(7, 5, 3, 3)
    (tile_to_shape(w, g.shape) * g).sum().backward()
    expected = torch.autograd.grad((repeat_tile(w, tuple(g.shape)) * g).sum(), w)[0]
    torch.testing.assert_close(w.grad, expected)


@pytest.mark.parametrize("ve", [True, False])
def test_gnn_without_autograd_equals_autograd_schedule(ve):
    torch.manual_seed(0)
    g = graph_from_module(create_model("resnet18", num_classes=10, adapt_cifar=True))
    gnn = GatedGNN(16, ve=ve)
    x = torch.randn(len(g.param_names), 16)
    with torch.no_grad():
        fast = gnn(x, g.edge_index, g.edge_dist)  # NumPy, nodes updated in place
    autograd = gnn(x, g.edge_index, g.edge_dist)  # the differentiable depth-batched schedule
    assert autograd.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, autograd.detach(), rtol=1e-5, atol=1e-6)
    x64 = x.double()
    with torch.no_grad():
        fast64 = gnn.double()(x64, g.edge_index, g.edge_dist)
    assert fast64.dtype == torch.float64
    torch.testing.assert_close(fast64.float(), autograd.detach(), rtol=1e-5, atol=1e-6)


def test_filled_model_equals_predict_parameters():
    torch.manual_seed(0)
    ghn = GHN2(hid=16, max_shape=(16, 16, 3, 3)).eval()
    model = create_model("resnet18", num_classes=10, adapt_cifar=True)
    graph = graph_from_module(model)
    with torch.no_grad():
        pred = ghn.predict_parameters(graph, model)
        ghn(model, graph)
    params = dict(model.named_parameters())
    assert sorted(pred) == sorted(params)
    for name, p in params.items():
        assert torch.equal(p, pred[name]), name
