import math

import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.functional import batched_forward, functional_forward
from hyperzoo.hypernets.mip import InputEncoder, MIPHypernet, encode_hyperparameters
from hyperzoo.hypernets.mlp import MLPHypernet
from hyperzoo.hypernets.specs import ShapeMismatchError, param_specs


def _target():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_cos_sin_has_constant_l2_norm():
    g = torch.rand(100, 3)
    g[0] = 0.0
    g[1] = 1.0
    e = encode_hyperparameters(g, "cos|sin")
    assert e.shape == (100, 6)
    torch.testing.assert_close(e.norm(dim=1), torch.full((100,), math.sqrt(3)))


def test_z_one_minus_z_has_constant_l1_norm():
    g = torch.rand(50, 2)
    e = encode_hyperparameters(g, "z|1-z")
    torch.testing.assert_close(e.abs().sum(1), torch.full((50,), 2.0))
    assert torch.equal(encode_hyperparameters(g, "none"), g)


def test_out_of_range_raises_or_clamps():
    with pytest.raises(ConfigError, match=r"\[0, 1\].*\[-0.5, 1\]"):
        encode_hyperparameters(torch.tensor([[-0.5], [1.0]]))
    with pytest.raises(ConfigError, match="NaN"):
        encode_hyperparameters(torch.tensor([[float("nan")]]))
    clamped = encode_hyperparameters(torch.tensor([[1.5]]), clamp=True)
    torch.testing.assert_close(clamped, torch.tensor([[0.0, 1.0]]), atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="unknown MIP encoding"):
        InputEncoder(1, "fourier")
    with pytest.raises(ConfigError):
        MIPHypernet(_target())(torch.tensor([[2.0]]))


@pytest.mark.parametrize("body", ["mlp", "chunked", "ghn_decoder"])
def test_zero_hypernet_output_equals_theta0(body):
    target = _target()
    mip = MIPHypernet(target, body, hidden=(8,), chunk_size=64)
    for p in mip.body.parameters():
        nn.init.zeros_(p)
    if body == "ghn_decoder":  # "linear" normalization under MIP: zero decoder output -> zero delta
        assert mip.body.normalize == "linear"
    out = mip(torch.rand(3, 1))
    for name, p in target.named_parameters():
        torch.testing.assert_close(out[name], p.detach().expand(3, *p.shape))


def test_theta0_from_pretrained_and_zero_output_reproduces_network():
    target = _target()
    pretrained = {k: torch.randn_like(v) for k, v in target.named_parameters()}
    mip = MIPHypernet.from_pretrained(target, pretrained, hidden=(8,))
    nn.init.zeros_(mip.body.head.weight)
    nn.init.zeros_(mip.body.head.bias)
    for k, v in mip.theta0_dict().items():
        torch.testing.assert_close(v, pretrained[k])
    x = torch.randn(2, 3, 6, 6)
    out = functional_forward(target, mip(torch.tensor([0.3])), x)
    torch.testing.assert_close(out, functional_forward(target, pretrained, x))


def test_default_parametrization_is_proportional_mip_is_not():
    target = _target()
    default = MIPHypernet(target, "mlp", encoding="none", residual=False, theta0="zeros", hidden=(16, 16))
    g = torch.tensor([[0.8], [0.4], [0.0]])
    w = default(g)["0.weight"]
    # zero biases at init: h(a g) = a h(g), and g = 0 gives all-zero weights
    torch.testing.assert_close(w[1], 0.5 * w[0], rtol=1e-4, atol=1e-6)
    assert w[2].abs().max() == 0
    mip = MIPHypernet(target, "mlp", hidden=(16, 16))
    wm = mip(g)["0.weight"]
    assert wm[2].abs().max() > 0
    assert not torch.allclose(wm[1], 0.5 * wm[0])


def test_batched_per_sample_weights_and_grads():
    target = _target()
    mip = MIPHypernet(target, "mlp", hidden=(8,))
    g = torch.rand(5, 1)
    out = batched_forward(target, mip(g), torch.randn(5, 3, 6, 6), per_sample=True)
    assert out.shape == (5, 3)
    out.sum().backward()
    assert mip.theta0.grad is not None and mip.theta0.grad.abs().sum() > 0


def test_custom_body_mismatch_errors():
    target = _target()
    specs = param_specs(target)
    with pytest.raises(ShapeMismatchError, match=r"takes 3 inputs.*has 2"):
        MIPHypernet(target, MLPHypernet(3, specs))

    class Bad(nn.Module):
        in_features = 2

        def forward(self, x):
            return {s.name: torch.zeros(x.shape[0], *s.shape[:-1], s.shape[-1] + 1) for s in specs}

    with pytest.raises(ShapeMismatchError, match=r"'0.weight' has shape \(1, 4, 3, 3, 4\).*\('B', 4, 3, 3, 3\)"):
        MIPHypernet(target, Bad())(torch.tensor([0.5]))
    with pytest.raises(ConfigError, match="theta0"):
        MIPHypernet(target, theta0="random")


def test_notes_readme_example_runs():
    from hyperzoo.nets import create_model

    net = create_model("resnet20")
    hnet = MIPHypernet(net, "chunked", encoding="cos|sin", chunk_size=4096)
    g = torch.rand(8, 1)
    logits = batched_forward(net, hnet(g), torch.randn(8, 3, 32, 32), per_sample=True)
    assert logits.shape == (8, 10)
