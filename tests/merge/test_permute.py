"""Applying specs: gathers along tied axes, flattened axes, widened models with updated metadata."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.merge.permute import (
    axis_index,
    channel_offset,
    fit_channel_modules,
    load_state,
    permute_state,
    random_permutations,
)
from hyperzoo.merge.spec import AxisTie, Leaf, PermutationSpec, derive_spec
from hyperzoo.nets import create_model
from hyperzoo.nets.cifar_resnet import PadShortcut
from tests.merge.conftest import randomize


def test_axis_index_of_a_flattened_split_axis() -> None:
    from hyperzoo.merge.spec import PermutationSpec

    spec = PermutationSpec([Leaf(2, False), Leaf(1, True)], {}, {}, [], [], [], (1,))
    tie = AxisTie("w", 0, "in", (0, 1), outer=1, inner=2)  # 3 channels x 2 positions each
    idx = axis_index(tie, spec, {0: torch.tensor([1, 0])})
    assert idx.tolist() == [2, 3, 0, 1, 4, 5]
    idx = axis_index(tie, spec, {0: torch.tensor([1, -1, 0])})  # widened: a zero channel in the middle
    assert idx.tolist() == [2, 3, -1, -1, 0, 1, 4, 5]


def test_permuting_twice_by_inverse_is_identity() -> None:
    model = randomize(create_model("resnet20"))
    spec = derive_spec(model)
    perms = random_permutations(spec, torch.Generator().manual_seed(3))
    inv = {g: torch.argsort(p) for g, p in perms.items()}
    state = model.state_dict()
    back = permute_state(spec, permute_state(spec, state, perms), inv)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_load_state_updates_widths() -> None:
    model = create_model("resnet20", shortcut="B")
    spec = derive_spec(model)
    g = next(i for i in spec.groups if spec.leaves[i].name.startswith("layer1.0.bn1"))
    idx = {g: torch.cat([torch.arange(16), torch.full((8,), -1)])}  # 8 zero channels added
    wide = load_state(model, permute_state(spec, model.state_dict(), idx), spec)
    assert wide.layer1[0].conv1.out_channels == 24 and wide.layer1[0].bn1.num_features == 24
    assert wide.layer1[0].conv2.in_channels == 24
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    wide.eval()
    with torch.no_grad():  # zero channels after BN(0 weight, 0 bias) change nothing
        torch.testing.assert_close(wide(x), model(x), atol=1e-4, rtol=1e-4)
    assert isinstance(wide.layer1[0].conv1, nn.Conv2d)


def test_channel_offset_probes_where_a_module_puts_its_input() -> None:
    pad = PadShortcut(13, 26, stride=2)
    assert channel_offset(pad, 13, 26) == 6  # (26 - 13) // 2 zero channels before the input
    assert channel_offset(pad, 20, 45) == 12
    assert (pad.in_channels, pad.out_channels) == (13, 26)  # restored after the probe

    class Reverse(nn.Module):  # parameter-free, but not a plain embedding
        def __init__(self) -> None:
            super().__init__()
            self.in_channels = self.out_channels = 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flip(1)

    assert channel_offset(Reverse(), 4, 4) is None


def _odd_pad_model() -> tuple[nn.Module, PermutationSpec, tuple[int, int]]:
    model = randomize(create_model("resnet8", width=0.8))  # layer2.0's shortcut pads 13 -> 26 with 6 + 7 zeros
    spec = derive_spec(model, input_size=16)
    name, _, out_leaves = spec.channel_modules[0]
    assert name == "layer2.0.shortcut" and [spec.leaves[g].size for g in out_leaves] == [6, 13, 7]
    return model, spec, (out_leaves[0], out_leaves[-1])


def test_load_state_refuses_widths_a_padding_shortcut_would_misplace() -> None:
    model, spec, (left, right) = _odd_pad_model()
    # 8 + 8 zero blocks: the shortcut pads (13 + 16 - 13) // 2 = 8 on the left, as the leaves say: accepted
    # 7 + 9: the shortcut still pads 8 on the left, the leaves say 7: every channel would shift by one
    for w_left, w_right, ok in ((8, 8, True), (7, 9, False)):
        idx = {
            left: torch.cat([torch.arange(6), torch.full((w_left - 6,), -1)]),
            right: torch.cat([torch.arange(7), torch.full((w_right - 7,), -1)]),
        }
        state = permute_state(spec, model.state_dict(), idx)
        widths = {left: w_left, right: w_right}
        if ok:
            assert load_state(model, state, spec, widths).layer2[0].shortcut.out_channels == 13 + w_left + w_right
        else:
            with pytest.raises(ConfigError, match=r"layer2\.0\.shortcut .* silently misplaced"):
                load_state(model, state, spec, widths)


def test_fit_channel_modules_moves_the_zero_blocks_to_the_modules_split() -> None:
    model, spec, (left, right) = _odd_pad_model()
    bounds = {left: (6, 12), right: (7, 14)}
    # round(2 * 6) + round(2 * 7) = 12 + 14: PadShortcut would split 13 + 13, which the left block cannot hold
    fitted = fit_channel_modules(model, spec, {left: 12, right: 14}, bounds)
    assert (fitted[left], fitted[right]) == (12, 13)
    assert fit_channel_modules(model, spec, {left: 8, right: 8}, bounds) == {left: 8, right: 8}  # already agrees
