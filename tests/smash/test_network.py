import pytest
import torch

from hyperzoo.hypernets.specs import ShapeMismatchError
from hyperzoo.smash.network import DerivedNet, SMASHNet, op_weight
from hyperzoo.smash.space import SMASHSpace


def test_smashnet_runs_many_architectures_and_grads_reach_w():
    space = SMASHSpace()
    net = SMASHNet(space, num_classes=10)
    x = torch.randn(4, 3, 32, 32)
    for seed in range(5):
        arch = space.sample(seed)
        w = torch.randn(space.max_units * space.base, space.columns * space.base, requires_grad=True)
        out = net(x, arch, w)
        assert out.shape == (4, 10)
        out.sum().backward()
        used = sum(n for spans in space.column_layout(arch) for _, n in spans)
        assert w.grad[:, : used * space.base].abs().sum() > 0
        assert torch.equal(w.grad[:, used * space.base :], torch.zeros_like(w.grad[:, used * space.base :]))


def test_op_weight_unit_norm_and_shape():
    space = SMASHSpace()
    arch = space.sample(1)
    op = arch.blocks[0].ops[0]
    w = torch.randn(space.max_units * space.base, space.columns * space.base)
    ow = op_weight(w, op, space.column_layout(arch)[0][0], space.base)
    assert ow.shape == (op.units * space.base, len(op.reads) * arch.blocks[0].bank_size * space.base, 1, 1)
    torch.testing.assert_close(ow.norm(), torch.tensor(1.0))


def test_wrong_weight_shape_is_named():
    space = SMASHSpace()
    net = SMASHNet(space)
    with pytest.raises(ShapeMismatchError, match=r"'w1x1' has shape \(3, 3\)"):
        net(torch.randn(2, 3, 32, 32), space.sample(0), torch.randn(3, 3))


def test_derived_net_trains_and_evaluates():
    space = SMASHSpace()
    arch = space.sample(2)
    net = DerivedNet(space, arch, num_classes=10)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.eval()(x).shape == (8, 10)
