import pytest
import torch

from hyperzoo.hypernets.specs import ShapeMismatchError
from hyperzoo.smash.hypernet import SMASHHypernet, WNConv2d
from hyperzoo.smash.space import SMASHSpace


def test_output_shape_and_block_layout():
    space = SMASHSpace()
    h = SMASHHypernet(space, width=8, growth=4, depth=2, noise=False)
    c = space.encode(space.sample(0))
    w = h(c)
    assert w.shape == (space.max_units * space.base, space.columns * space.base)
    # a batch gives the same matrices; without noise the output is deterministic
    wb = h(torch.stack([c, c]))
    torch.testing.assert_close(wb[0], w)
    torch.testing.assert_close(wb[1], w)


def test_noise_changes_output_and_is_seedable():
    space = SMASHSpace()
    h = SMASHHypernet(space, width=8, growth=4, depth=1)
    c = space.encode(space.sample(0))
    a = h(c, generator=torch.Generator().manual_seed(0))
    b = h(c, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert not torch.equal(a, h(c, generator=torch.Generator().manual_seed(1)))


def test_weight_norm_is_scale_invariant():
    conv = WNConv2d(3, 5, 3)
    x = torch.randn(1, 3, 6, 6)
    y = conv(x)
    with torch.no_grad():
        conv.weight.mul_(7.0)
    torch.testing.assert_close(conv(x), y)


def test_wrong_encoding_shape():
    h = SMASHHypernet(SMASHSpace(), width=4, growth=2, depth=1)
    with pytest.raises(ShapeMismatchError, match="encoding has shape"):
        h(torch.zeros(3, 4, 5))
