"""Permutation specs: derived from one traced pass, valid (outputs unchanged under random permutations)."""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from hyperzoo.errors import ConfigError
from hyperzoo.merge import check_spec, derive_spec
from hyperzoo.nets import create_model
from tests.merge.conftest import randomize


def small_vgg_bn() -> nn.Module:
    """A VGG-BN in miniature: conv-BN-ReLU-pool stages, flatten of a 2x2 map, a linear classifier."""
    layers: list[nn.Module] = []
    c_in = 3
    for c in (8, 16):
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4, 12),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(12, 10),
    )


def _valid(model: nn.Module, size: int) -> int:
    randomize(model)
    spec = derive_spec(model, input_size=size)
    diff, scale = check_spec(model, spec)
    assert scale > 1e-3, "the check would be vacuous"
    assert diff <= 1e-4 * scale, f"outputs moved by {diff} (scale {scale}) under a random permutation"
    return len(spec.groups)


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [
        ("resnet20", {"shortcut": "A"}, 32),
        ("resnet20", {"shortcut": "B", "width": 2}, 32),
        ("resnet18", {"num_classes": 10}, 32),
        ("resnet50", {"num_classes": 10}, 32),
        ("mobilenet_v2", {"num_classes": 10}, 32),
        ("mobilenet_v3_small", {"num_classes": 10}, 32),
        ("regnet_y_400mf", {"num_classes": 10}, 32),
        ("convnext_tiny", {"num_classes": 10}, 32),
    ],
)
def test_spec_is_valid(name: str, kwargs: dict, size: int) -> None:
    assert _valid(create_model(name, **kwargs), size) > 0


def test_vgg_bn_flatten_is_valid() -> None:
    assert _valid(small_vgg_bn(), 16) == 3  # two conv widths and the hidden linear width


def test_group_counts_match_the_reference_tracer() -> None:
    # PLeaS's fx tracer finds 12 groups in ResNet-18 and 37 in ResNet-50 (1 stem, 4 streams, 32 inner)
    assert len(derive_spec(create_model("resnet18"), input_size=32).groups) == 12
    assert len(derive_spec(create_model("resnet50"), input_size=32).groups) == 37


def test_zero_padding_shortcut_nests_the_stream() -> None:
    spec = derive_spec(create_model("resnet20", shortcut="A"))
    # stage-1 stream (16), the two padded halves of stage 2 (8 + 8) and of stage 3 (16 + 16), 9 block-inner
    sizes = sorted(spec.leaves[g].size for g in spec.groups)
    assert sizes == sorted([16, 8, 8, 16, 16] + [16] * 3 + [32] * 3 + [64] * 3)
    conv = next(t for t in spec.ties["layer3.1.conv1.weight"] if t.dim == 1)  # reads the stage-3 stream
    assert len(conv.segments) == 5  # [lo16, [lo8, s16, hi8], hi16]


def _tiny_vit() -> nn.Module:
    return VisionTransformer(
        image_size=16, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=24, num_classes=10
    )


def test_attention_is_refused_by_name() -> None:
    model = randomize(_tiny_vit())
    with pytest.raises(ConfigError, match=r"attention in module 'encoder\.layers\.encoder_layer_0\.self_attention'"):
        derive_spec(model, input_size=16)


def test_attention_non_strict_keeps_only_valid_groups() -> None:
    model = randomize(_tiny_vit())
    spec = derive_spec(model, input_size=16, strict=False)
    assert spec.notes and "attention" in spec.notes[0]
    assert sorted(spec.leaves[g].size for g in spec.groups) == [24, 24]  # the MLP hidden layers only
    diff, scale = check_spec(model, spec)
    assert diff <= 1e-4 * scale


class _CumSum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 4, 3), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cumsum(self.conv(x), dim=1).mean((2, 3)))


def test_unsupported_operation_is_named() -> None:
    with pytest.raises(ConfigError, match=r"operation 'cumsum' in the top-level module"):
        derive_spec(_CumSum(), input_size=8)
    spec = derive_spec(_CumSum(), input_size=8, strict=False)
    assert spec.groups == [] and "cumsum" in spec.notes[0]


def test_different_architecture_is_rejected() -> None:
    spec = derive_spec(create_model("resnet20"))
    with pytest.raises(ConfigError, match="different architecture"):
        spec.check_compatible(create_model("resnet32").state_dict())
    with pytest.raises(ConfigError, match=r"tensor 'conv1.weight' has shape"):
        spec.check_compatible(create_model("resnet20", width=2).state_dict())


SLOW_FAMILIES = [
    *(n for n in tvm.list_models(module=tvm) if n.startswith(("resnet", "wide_resnet", "resnext50"))),
    *(f"regnet_{k}_{s}" for k in "xy" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf")),
    *("vgg11_bn", "vgg16_bn", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_FAMILIES)
def test_torchvision_family_spec_is_valid(name: str) -> None:
    assert _valid(create_model(name, num_classes=10), 64) > 0
