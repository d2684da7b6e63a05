import pytest
import torch
import torchvision
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.specs import (
    ShapeMismatchError,
    check_params,
    flatten_params,
    param_specs,
    split_flat,
    total_numel,
)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "vit_b_16", "convnext_tiny"])
def test_specs_of_torchvision_models(name):
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    specs = param_specs(model)
    params = dict(model.named_parameters())
    assert [s.name for s in specs] == list(params)
    assert total_numel(specs) == sum(p.numel() for p in params.values())
    for s in specs:
        assert s.shape == tuple(params[s.name].shape)
        if s.role == "weight" and len(s.shape) >= 2:
            assert s.fan_in * s.shape[0] == s.numel
    roles = {s.role for s in specs}
    assert {"weight", "norm"} <= roles


def test_roles_and_fans_resnet18():
    model = torchvision.models.resnet18()
    specs = {s.name: s for s in param_specs(model)}
    assert specs["conv1.weight"].role == "weight"
    assert specs["conv1.weight"].fan_in == 3 * 7 * 7
    assert specs["conv1.weight"].fan_out == 64 * 7 * 7
    assert specs["bn1.weight"].role == "norm" and specs["bn1.weight"].is_norm_weight
    assert specs["bn1.bias"].role == "norm" and not specs["bn1.bias"].is_norm_weight
    assert specs["fc.bias"].role == "bias"
    assert specs["fc.weight"].module_type == "Linear"


def test_norm_keep_policy_drops_norm_params():
    model = torchvision.models.resnet18()
    kept = param_specs(model, norm="keep")
    assert all(s.role != "norm" for s in kept)
    assert len(kept) < len(param_specs(model))
    with pytest.raises(ConfigError, match="norm must be"):
        param_specs(model, norm="bogus")


def test_include_exclude_and_empty_selection():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert [s.name for s in param_specs(model, include=["1."])] == ["1.weight", "1.bias"]
    assert [s.name for s in param_specs(model, exclude=["0."])] == ["1.weight", "1.bias"]
    with pytest.raises(ConfigError, match="no parameters left"):
        param_specs(model, include=["nothing"])


def test_split_flatten_roundtrip():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    specs = param_specs(model)
    flat = torch.randn(5, total_numel(specs))
    params = split_flat(flat, specs)
    assert params["0.weight"].shape == (5, 4, 3, 3, 3)
    assert torch.equal(flatten_params(params, specs, batch_dims=1), flat)


def test_shape_mismatch_names_tensor_and_both_shapes():
    model = nn.Linear(3, 4)
    specs = param_specs(model)
    with pytest.raises(ShapeMismatchError, match=r"'weight' has shape \(4, 2\).*needs \(4, 3\)"):
        check_params({"weight": torch.zeros(4, 2), "bias": torch.zeros(4)}, specs)
    with pytest.raises(ShapeMismatchError, match=r"no tensor for parameter 'bias'"):
        check_params({"weight": torch.zeros(4, 3)}, specs)
    with pytest.raises(ShapeMismatchError, match="not parameters of the target"):
        check_params({"weight": torch.zeros(4, 3), "bias": torch.zeros(4), "extra": torch.zeros(1)}, specs)
    with pytest.raises(ShapeMismatchError, match="batch dimensions"):
        check_params({"weight": torch.zeros(2, 4, 3), "bias": torch.zeros(3, 4)}, specs, batch_dims=1)
    with pytest.raises(ShapeMismatchError, match="need 16"):
        split_flat(torch.zeros(15), specs)
