import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.functional import batched_forward, functional_forward, loop_forward, norm_statistics
from hyperzoo.hypernets.specs import ShapeMismatchError, param_specs
from hyperzoo.nets import create_model


def _weight_sets(model: nn.Module, b: int, noise: float = 0.05, norm: str = "generate") -> dict:
    g = torch.Generator().manual_seed(0)
    names = {s.name for s in param_specs(model, norm=norm)}
    return {
        n: p.detach().unsqueeze(0) + noise * torch.randn(b, *p.shape, generator=g)
        for n, p in model.named_parameters()
        if n in names
    }


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return create_model("resnet20")


def test_batched_equals_loop_shared_input(resnet):
    params = _weight_sets(resnet, 3)
    x = torch.randn(4, 3, 32, 32)
    out = batched_forward(resnet, params, x)
    assert out.shape == (3, 4, 10)
    torch.testing.assert_close(out, loop_forward(resnet, params, x), rtol=1e-4, atol=1e-5)
    # the weight sets differ, so the outputs do
    assert not torch.allclose(out[0], out[1])


def test_batched_equals_loop_per_sample(resnet):
    params = _weight_sets(resnet, 4)
    x = torch.randn(4, 3, 32, 32)
    out = batched_forward(resnet, params, x, per_sample=True)
    assert out.shape == (4, 10)
    torch.testing.assert_close(out, loop_forward(resnet, params, x, per_sample=True), rtol=1e-4, atol=1e-5)


def test_batched_running_stats_and_chunks(resnet):
    resnet.eval()
    try:
        params = _weight_sets(resnet, 3)
        x = torch.randn(2, 3, 32, 32)
        a = batched_forward(resnet, params, x, norm_stats="running", chunk_size=2)
        torch.testing.assert_close(a, loop_forward(resnet, params, x, norm_stats="running"), rtol=1e-4, atol=1e-5)
    finally:
        resnet.train()


def test_norm_keep_policy_uses_module_params(resnet):
    params = _weight_sets(resnet, 2, norm="keep")
    assert not any("bn" in k for k in params)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        batched_forward(resnet, params, x), loop_forward(resnet, params, x), rtol=1e-4, atol=1e-5
    )


def test_functional_forward_matches_module_and_grads_flow():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(2, 3, 6, 6)
    model(x)
    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    before = model[1].running_mean.clone()
    out = functional_forward(model, params, x)
    assert torch.equal(model[1].running_mean, before)  # batch statistics, nothing updated in place
    torch.testing.assert_close(out, model(x))  # the plain call uses the same batch statistics
    out.sum().backward()
    assert all(p.grad is not None for p in params.values())


def test_norm_statistics_restores_on_error():
    bn = nn.BatchNorm2d(3)
    mean = bn.running_mean
    with pytest.raises(RuntimeError), norm_statistics(bn, "batch"):
        assert bn.running_mean is None
        raise RuntimeError("boom")
    assert bn.running_mean is mean and bn.track_running_stats
    with pytest.raises(ConfigError), norm_statistics(bn, "nope"):
        pass


def test_batched_forward_errors(resnet):
    params = _weight_sets(resnet, 2)
    with pytest.raises(ShapeMismatchError, match="2 weight sets"):
        batched_forward(resnet, params, torch.randn(3, 3, 32, 32), per_sample=True)
    bad = dict(params)
    bad["fc.weight"] = torch.zeros(2, 10, 32)
    with pytest.raises(ShapeMismatchError, match=r"'fc.weight' has shape \(2, 10, 32\).*\('B', 10, 64\)"):
        batched_forward(resnet, bad, torch.randn(1, 3, 32, 32))
    with pytest.raises(ShapeMismatchError, match="no generated tensors"):
        batched_forward(resnet, {}, torch.randn(1, 3, 32, 32))
