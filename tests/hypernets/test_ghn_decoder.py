import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.ghn_decoder import GHNDecoderHypernet
from hyperzoo.hypernets.specs import ShapeMismatchError, param_specs


def _target():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_ghn_decoder_body_direct_mode():
    target = _target()
    specs = param_specs(target)
    h = GHNDecoderHypernet(4, specs, hid=8, max_shape=(4, 4, 3, 3))
    out = h(torch.randn(2, 4))
    assert {k: tuple(v.shape) for k, v in out.items()} == {s.name: (2, *s.shape) for s in specs}
    bn_w = out["1.weight"]
    assert bool(((bn_w >= 0) & (bn_w <= 2)).all())  # GHN-2 normalization of norm scales
    assert h(torch.randn(4))["4.weight"].shape == (3, 64)


def test_ghn_decoder_tiles_large_tensors_and_errors():
    specs = param_specs(nn.Conv2d(20, 12, 5))
    h = GHNDecoderHypernet(2, specs, hid=8, max_shape=(4, 4, 3, 3))
    w = h(torch.randn(2))["weight"]
    assert w.shape == (12, 20, 5, 5)
    torch.testing.assert_close(w[:4, :4], w[4:8, 4:8])  # tiled from one 4 x 4 x 3 x 3 block
    with pytest.raises(ShapeMismatchError, match="expected"):
        h(torch.randn(3, 5))
    with pytest.raises(ConfigError):
        GHNDecoderHypernet(2, specs, normalize="weird")
