"""The one path from predicted tensors to a running network: installing, pruning, the batch-norm switch."""

import copy

import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.ghn import create_ghn
from hyperzoo.hypernets.functional import (
    functional_forward,
    install_parameters,
    norm_statistics,
    prune_parameters,
    set_norm_statistics,
)
from hyperzoo.hypernets.specs import ShapeMismatchError


class Tied(nn.Module):
    """A conv net whose classifier shares its weight with a second head (a tied tensor held by two modules)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 4)
        self.head2 = nn.Linear(4, 4)
        self.head2.weight = self.head.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        return self.head2(torch.tanh(self.head(h)))


def _predicted(model: nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}


def test_install_copies_values_into_the_parameters_and_keeps_tied_ones_tied():
    model = Tied()
    before = {n: p for n, p in model.named_parameters()}
    params = _predicted(model)
    assert install_parameters(model, params) is model
    assert model.head.weight is model.head2.weight  # still one tensor
    for name, p in model.named_parameters():
        assert p is before[name] and isinstance(p, nn.Parameter)  # same leaves, new values
        assert torch.equal(p, params[name])


def test_install_on_meta_gives_real_tied_parameters():
    with torch.device("meta"):
        model = Tied()
    assert model.head.weight is model.head2.weight and model.head.weight.is_meta
    params = _predicted(Tied())
    install_parameters(model, params)
    assert model.head.weight is model.head2.weight
    for name, p in model.named_parameters():
        assert isinstance(p, nn.Parameter) and not p.is_meta and p.requires_grad
        assert torch.equal(p, params[name]) and p is not params[name]  # a copy, not the caller's tensor


def test_install_keep_graph_replaces_every_slot_and_gradients_reach_the_source():
    model = Tied()
    source = {n: t.requires_grad_() for n, t in _predicted(model).items()}
    params = {n: 2 * t for n, t in source.items()}  # non-leaf tensors, as a hypernet produces them
    install_parameters(model, params, keep_graph=True)
    assert model.head.weight is params["head.weight"] and model.head2.weight is params["head.weight"]
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    assert all(t.grad is not None for t in source.values())


def test_install_expand_and_write_hooks():
    model = nn.Linear(4, 6)
    blocks = {"weight": torch.ones(2, 2), "bias": torch.arange(3.0)}

    def expand(block: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return block.repeat([-(-s // b) for s, b in zip(shape, block.shape)])[tuple(slice(0, s) for s in shape)]

    install_parameters(model, blocks, expand=expand)
    assert torch.equal(model.weight, torch.ones(6, 4))
    assert torch.equal(model.bias, torch.tensor([0.0, 1, 2, 0, 1, 2]))
    written = []
    install_parameters(model, blocks, write=lambda p, v: written.append((p.shape, v.shape)))
    assert written == [((6, 4), (2, 2)), ((6,), (3,))]


def test_install_errors_name_the_tensor():
    model = nn.Linear(4, 6)
    with pytest.raises(ShapeMismatchError, match=r"'fc\.weight' is not a parameter of Linear"):
        install_parameters(model, {"fc.weight": torch.zeros(6, 4)})
    with pytest.raises(ShapeMismatchError, match=r"'bias' has shape \(5,\), the parameter \(6,\)"):
        install_parameters(model, {"bias": torch.zeros(5)})


def test_functional_call_equals_the_installed_forward():
    torch.manual_seed(0)
    model = Tied()
    params = _predicted(model)
    x = torch.randn(3, 3, 6, 6)
    out = functional_forward(model, params, x)  # batch statistics, inside the call only
    assert model.bn.track_running_stats and model.bn.running_mean is not None
    installed = set_norm_statistics(install_parameters(copy.deepcopy(model), params), "batch")
    torch.testing.assert_close(out, installed(x), rtol=0, atol=0)


def test_ghn_call_equals_functional_forward_of_its_prediction():
    torch.manual_seed(0)
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)).eval()
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        pred = ghn.predict_parameters(model)
        out = functional_forward(model, pred, x)
        filled = ghn(copy.deepcopy(model))
        torch.testing.assert_close(filled(x), out, rtol=0, atol=0)
    assert filled[1].training and not filled[1].track_running_stats


def test_prune_parameters():
    model = Tied()
    prune_parameters(model, {"conv.weight", "head.weight"})
    assert model.conv.bias is None and model.bn.weight is None and model.head.bias is None
    assert model.conv.weight is not None and model.head.weight is not None
    assert sorted(n for n, _ in model.named_parameters()) == ["conv.weight", "head.weight"]


def test_set_norm_statistics_is_the_switch_of_the_context_and_the_context_restores_it():
    model = Tied().eval()
    state = (model.bn.training, model.bn.track_running_stats, model.bn.running_mean, model.bn.num_batches_tracked)
    with norm_statistics(model, "batch"):
        assert model.bn.training and not model.bn.track_running_stats and model.bn.running_mean is None
    assert (model.bn.training, model.bn.track_running_stats, model.bn.running_mean, model.bn.num_batches_tracked) == (
        state
    )
    model.train()
    with norm_statistics(model, "running"):
        assert not model.bn.training and model.bn.track_running_stats
    assert model.bn.training
    set_norm_statistics(model, "batch")  # for good: the running buffers stay, nothing updates them
    mean = model.bn.running_mean.clone()
    model(torch.randn(2, 3, 4, 4))
    assert model.bn.training and not model.bn.track_running_stats and torch.equal(model.bn.running_mean, mean)
    with pytest.raises(ConfigError, match="has no running statistics"):
        set_norm_statistics(nn.BatchNorm2d(3, track_running_stats=False), "running")
    with pytest.raises(ConfigError, match="'batch' or 'running'"):
        set_norm_statistics(model, "eval")  # type: ignore[arg-type]
