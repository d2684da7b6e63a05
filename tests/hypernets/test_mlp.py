import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.functional import batched_forward
from hyperzoo.hypernets.mlp import ChunkedMLPHypernet, MLPHypernet
from hyperzoo.hypernets.specs import ShapeMismatchError, param_specs


def _target():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)
    )


@pytest.mark.parametrize("cls,kw", [(MLPHypernet, {}), (ChunkedMLPHypernet, {"chunk_size": 50})])
def test_shapes_batched_and_single(cls, kw):
    target = _target()
    specs = param_specs(target)
    h = cls(4, specs, hidden=(16,), **kw)
    out = h(torch.randn(3, 4))
    assert {k: tuple(v.shape) for k, v in out.items()} == {s.name: (3, *s.shape) for s in specs}
    single = h(torch.randn(4))
    assert single["0.weight"].shape == (8, 3, 3, 3)
    logits = batched_forward(target, out, torch.randn(2, 3, 8, 8))
    assert logits.shape == (3, 2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in h.parameters())


def test_output_scaling_matches_target_init():
    specs = param_specs(nn.Sequential(nn.Linear(400, 300), nn.BatchNorm1d(300)))
    h = MLPHypernet(8, specs, hidden=(64, 64))
    out = h(torch.randn(32, 8))
    std = out["0.weight"].std().item()
    assert 0.3 * (2 / 400) ** 0.5 < std < 3 * (2 / 400) ** 0.5
    assert abs(out["1.weight"].mean().item() - 1.0) < 0.2  # norm scales start around one


def test_chunked_has_fewer_parameters():
    specs = param_specs(nn.Linear(100, 100))
    full = MLPHypernet(4, specs, hidden=(16,))
    chunked = ChunkedMLPHypernet(4, specs, chunk_size=256, hidden=(16,))
    assert chunked.num_chunks == 40  # ceil(10100 / 256)
    assert sum(p.numel() for p in chunked.parameters()) < sum(p.numel() for p in full.parameters()) / 10


def test_bad_inputs():
    specs = param_specs(nn.Linear(2, 2))
    h = MLPHypernet(3, specs)
    with pytest.raises(ShapeMismatchError, match=r"input has shape \(2, 4\), expected \[B, 3\]"):
        h(torch.zeros(2, 4))
    with pytest.raises(ConfigError):
        MLPHypernet(0, specs)
    with pytest.raises(ConfigError):
        MLPHypernet(3, specs, activation="swishy")
    with pytest.raises(ConfigError):
        ChunkedMLPHypernet(3, specs, chunk_size=0)
