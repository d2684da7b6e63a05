import pytest
import torch
import torch.nn.functional as F

from hyperzoo.errors import ConfigError
from hyperzoo.layers import TemplateConv2d, TemplateLinear, TemplateWideResNet, is_template_network
from hyperzoo.nets import WideResNet, create_model

X = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("train", [False, True])
def test_grown_net_with_zero_new_coefficients_is_the_two_members_side_by_side(train):
    torch.manual_seed(0)
    net = TemplateWideResNet(10, 2).train(train)
    members = []
    for m in (0, 1):
        net.set_member(m)
        members.append((net.features(X), net(X)))
    net.grow("zero")
    assert net.grown
    torch.testing.assert_close(net.features(X), torch.cat([members[0][0], members[1][0]], 1), rtol=0, atol=1e-5)
    torch.testing.assert_close(net(X), members[0][1] + members[1][1], rtol=0, atol=1e-5)


def test_a_grown_layer_is_the_documented_block_matrix():
    torch.manual_seed(0)
    conv = TemplateConv2d(8, 6, 3, padding=1)
    w0 = conv.weight()
    conv.set_member(1)
    w1 = conv.weight()
    conv.grow("orthogonal")
    w = conv.weight()
    assert w.shape == (6, 8, 3, 3)
    torch.testing.assert_close(w[:3, :4], w0), torch.testing.assert_close(w[3:, 4:], w1)
    # W_2 (top right) mixes set 0 with a new coefficient vector orthogonal to member 0's
    (s2, c2), (s3, c3) = conv.off_diagonal[(0, 1)], conv.off_diagonal[(1, 0)]
    assert (s2, s3) == (0, 1)
    coefs = [c.detach() for c in conv.coefs]
    assert abs(float(coefs[c2] @ coefs[0])) < 1e-5 and abs(float(coefs[c3] @ coefs[1])) < 1e-5
    assert conv.coefs[c2].norm() > 0.1
    expect = conv.coefs[c2][0] * conv.templates[0] + conv.coefs[c2][1] * conv.templates[1]
    torch.testing.assert_close(w[:3, 4:], expect)


def test_parameter_counts():
    conv = TemplateConv2d(8, 16, 3)
    # 2 sets x 2 templates of the half shape (8, 4, 3, 3) = one full (16, 8, 3, 3) weight, plus 2 x 2 coefficients
    assert _count(conv) == 16 * 8 * 9 + 4
    conv.grow("orthogonal")
    assert _count(conv) == 16 * 8 * 9 + 8
    fresh = TemplateConv2d(8, 16, 3)
    fresh.grow("random", new_templates=True)
    assert _count(fresh) == 2 * 16 * 8 * 9 + 8
    lin = TemplateLinear(8, 10)  # classifier: full output, so each half-input template is (10, 4)
    assert _count(lin) == 4 * 10 * 4 + 4 + 2 * 10
    net, wrn = TemplateWideResNet(16, 2), WideResNet(16, 2)
    layers = [m for m in net.modules() if isinstance(m, TemplateConv2d | TemplateLinear)]
    split = [m for m in layers if m.split_in and m.split_out]
    # stem (3 -> 16): 2 sets x 2 templates of (8, 3, 3, 3) is twice the full stem; the classifier likewise
    extra = 16 * 3 * 9 + 10 * 128 + 10
    assert _count(net) == _count(wrn) + extra + 4 * len(layers)
    net.grow()
    assert _count(net) == _count(wrn) + extra + 4 * len(layers) + 4 * len(split)


def test_gradients_reach_the_new_coefficients_and_only_the_active_member_trains():
    torch.manual_seed(0)
    net = TemplateWideResNet(10, 2)
    net.set_member(1)
    F.cross_entropy(net(X), torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is None for p in net.member_parameters(0))
    assert all(p.grad is not None for p in net.member_parameters(1))
    net.zero_grad()
    net.grow("zero")
    F.cross_entropy(net(X), torch.tensor([0, 1, 2])).backward()
    new = [m.coefs[i] for m in net.modules() if isinstance(m, TemplateConv2d) and m.off_diagonal for i in (2, 3)]
    assert new and all(p.grad is not None and p.grad.abs().sum() > 0 for p in new)


@pytest.mark.parametrize("new_templates", [False, True])
def test_grown_state_dict_loads_into_a_fresh_network(new_templates):
    torch.manual_seed(0)
    net = create_model("mgwrn10_2").eval()
    net.grow("copy", noise=0.1, new_templates=new_templates)
    fresh = create_model("mgwrn10_2").eval()
    fresh.load_state_dict(net.state_dict())
    assert fresh.grown
    torch.testing.assert_close(fresh(X), net(X))


def test_bad_inputs():
    net = TemplateWideResNet(10, 2)
    net.grow()
    with pytest.raises(ConfigError, match="already grown"):
        net.grow()
    with pytest.raises(ConfigError, match="set_member"):
        net.set_member(0)
    with pytest.raises(ConfigError, match="unknown growth policy"):
        TemplateWideResNet(10, 2).grow("sideways")
    with pytest.raises(ConfigError, match="must be even"):
        TemplateConv2d(7, 8, 3)
    with pytest.raises(ConfigError, match="widen"):
        TemplateWideResNet(10, 3)
    assert is_template_network(net) and not is_template_network(create_model("resnet8"))
