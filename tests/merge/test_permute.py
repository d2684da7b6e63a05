"""Applying specs: gathers along tied axes, flattened axes, widened models with updated metadata."""

from __future__ import annotations

import torch
from torch import nn

from hyperzoo.merge.permute import axis_index, load_state, permute_state, random_permutations
from hyperzoo.merge.spec import AxisTie, Leaf, derive_spec
from hyperzoo.nets import create_model
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
