"""Width surgery: a network resized to the state of its architecture at other widths computes what that one does."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v2

from hyperzoo.errors import DataError
from hyperzoo.nets import create_model, example_input, resize_to_state
from hyperzoo.nets.cifar_resnet import PadShortcut
from tests.merge.conftest import randomize


def _same_outputs(resized: nn.Module, target: nn.Module, x: Tensor) -> None:
    resized.eval()
    target.eval()
    with torch.no_grad():
        assert torch.equal(resized(x), target(x))


@pytest.mark.parametrize("name", ["resnet8", "resnet8_laurel_lr"])
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_a_resnet_resized_to_a_wider_one_is_that_network(name: str, shortcut: str) -> None:
    small = create_model(name, shortcut=shortcut)
    wide = randomize(create_model(name, width=2, shortcut=shortcut), 1)
    resized = resize_to_state(small, wide.state_dict(), example=example_input(small))
    assert resized is small
    block = resized.layer2[0]
    assert (block.conv1.in_channels, block.conv1.out_channels, block.bn1.num_features) == (32, 64, 64)
    assert resized.fc.in_features == 128
    if shortcut == "A":  # no tensor carries these widths: the block sets them (follow_widths)
        assert isinstance(block.shortcut, PadShortcut)
        assert (block.shortcut.in_channels, block.shortcut.out_channels) == (32, 64)
    _same_outputs(resized, wide, torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))


class _Tiny(nn.Module):
    """Every module type width surgery knows: grouped, depthwise and transposed convs, four norms, attention."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, w, 3, padding=1)
        self.gn = nn.GroupNorm(4, w)
        self.dw = nn.Conv2d(w, w, 3, padding=1, groups=w)  # depthwise: one group per channel
        self.bn = nn.BatchNorm2d(w)
        self.grouped = nn.Conv2d(w, 2 * w, 1, groups=4)  # four groups, whatever the width
        self.up = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.inorm = nn.InstanceNorm2d(w, affine=True)
        self.ln = nn.LayerNorm(w)
        self.attn = nn.MultiheadAttention(w, 2, batch_first=True)
        self.head = nn.Linear(w, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.inorm(self.up(self.grouped(self.bn(self.dw(self.gn(self.stem(x)))))))
        t = self.ln(x.flatten(2).transpose(1, 2))  # (B, H W, w)
        t = self.attn(t, t, t, need_weights=False)[0]
        return self.head(t.mean(1))


def test_grouped_depthwise_transposed_norms_and_attention() -> None:
    wide = randomize(_Tiny(16), 2)
    resized = resize_to_state(_Tiny(8), wide.state_dict())
    assert resized.dw.groups == resized.dw.in_channels == resized.dw.out_channels == 16
    assert (resized.grouped.groups, resized.grouped.in_channels, resized.grouped.out_channels) == (4, 16, 32)
    assert (resized.up.in_channels, resized.up.out_channels) == (32, 16)
    assert resized.gn.num_channels == 16 and resized.inorm.num_features == 16 and resized.ln.normalized_shape == (16,)
    assert (resized.attn.embed_dim, resized.attn.head_dim) == (16, 8) and resized.head.in_features == 16
    _same_outputs(resized, wide, torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)))


def test_torchvision_mobilenet_with_depthwise_convs() -> None:
    wide = randomize(mobilenet_v2(num_classes=10, width_mult=1.5), 3)
    resized = resize_to_state(mobilenet_v2(num_classes=10), wide.state_dict())
    _same_outputs(resized, wide, torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)))


def test_tied_weights_stay_tied() -> None:
    def net(w: int) -> nn.Module:
        m = nn.Sequential(nn.Linear(w, w), nn.ReLU(), nn.Linear(w, w))
        m[2].weight = m[0].weight
        return m

    resized = resize_to_state(net(4), net(6).state_dict())
    assert resized[2].weight is resized[0].weight and resized[0].weight.shape == (6, 6)


def test_errors_name_the_tensor_and_the_shapes() -> None:
    wide = create_model("resnet8", width=2).state_dict()
    with pytest.raises(DataError, match=r"1 missing \(e.g. \['fc.bias'\]\)"):
        resize_to_state(create_model("resnet8"), {k: v for k, v in wide.items() if k != "fc.bias"})
    with pytest.raises(DataError, match=r"tensor conv1.weight has shape .* not the number of dimensions"):
        resize_to_state(create_model("resnet8"), {**wide, "conv1.weight": wide["conv1.weight"][..., 0]})
    with pytest.raises(DataError, match=r"tensors bn1.weight \(32,\), bn1.bias \(5,\).* disagree on the width of bn1"):
        resize_to_state(create_model("resnet8"), {**wide, "bn1.bias": torch.zeros(5)})
    with pytest.raises(DataError, match=r"tensor fc.bias has shape \(3,\), but fc.weight \(10, 128\) has 10 outputs"):
        resize_to_state(create_model("resnet8"), {**wide, "fc.bias": torch.zeros(3)})
    narrow = create_model("resnet8").state_dict()
    unchained = {**wide, **{k: v for k, v in narrow.items() if k.startswith("bn1.")}}  # conv1: 32 out, bn1: 16
    with pytest.raises(DataError, match=r"in my net: .* module 'bn1' \(BatchNorm2d\) with tensors \{'weight': \(16,\)"):
        small = create_model("resnet8")
        resize_to_state(small, unchained, "in my net", example=example_input(small))
