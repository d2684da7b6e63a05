import pytest
import torch
import torchvision
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.layers import VARIANTS, LaurelBlock, laurel_param_count, laurelize, parse_variant
from hyperzoo.nets import CifarResNet, create_model

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _pair(build, variant, **kw):
    torch.manual_seed(0)
    plain = build()
    torch.manual_seed(0)
    return plain, laurelize(build(), variant, **kw)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_every_variant_equals_the_plain_resnet_at_init(variant, shortcut):
    plain, lau = _pair(lambda: CifarResNet(8, shortcut=shortcut), variant, rank=2, k=3)
    for mode in (False, True):  # eval (running stats) and train (batch stats)
        plain.train(mode), lau.train(mode)
        torch.testing.assert_close(lau(X), plain(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_resnets_with_projection_shortcuts(name):
    plain, lau = _pair(lambda: torchvision.models.get_model(name, num_classes=10), "rw_lr_pa", rank=4, k=3)
    plain.eval(), lau.eval()
    torch.testing.assert_close(lau(X), plain(X), rtol=0, atol=1e-5)
    assert sum(isinstance(m, LaurelBlock) for m in lau.modules()) == (8 if name == "resnet18" else 16)


def test_exact_parameter_counts():
    base = sum(p.numel() for p in create_model("resnet20").parameters())
    assert base == 269_722  # He et al. round this to 0.27M
    # 9 blocks: RW 2 each; LR 2 r C with C = 16, 32, 64 (3 blocks each); PA min(k-1, run) per block
    expect = {"rw": 18, "lr": 2 * 4 * 3 * (16 + 32 + 64), "pa": 0 + 1 + 2 + 2 + 0 + 1 + 2 + 0 + 1}
    expect |= {"rw_lr": expect["rw"] + expect["lr"], "rw_lr_pa": expect["rw"] + expect["lr"] + expect["pa"]}
    for variant, n in expect.items():
        net = create_model(f"resnet20_laurel_{variant}")
        assert laurel_param_count(net) == n
        assert sum(p.numel() for p in net.parameters()) == base + n
    # torchvision ResNet-50: 16 bottlenecks, output channels 256 x3, 512 x4, 1024 x6, 2048 x3
    tv = laurelize(torchvision.models.resnet50(), "rw_lr", rank=4)
    assert laurel_param_count(tv) == 32 + 2 * 4 * (3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048)
    extra = create_model("resnet20_extra_block")
    assert sum(p.numel() for p in extra.parameters()) == base + 2 * 16 * 16 * 9 + 4 * 16


@pytest.mark.parametrize("variant", ["rw_lr_pa", "lr_pa"])
def test_gradient_reaches_every_new_parameter(variant):
    torch.manual_seed(0)
    net = laurelize(CifarResNet(8, shortcut="B"), variant, rank=2, k=3)
    new = [p for m in net.modules() if isinstance(m, LaurelBlock) for p in m.laurel_parameters()]
    before = [p.detach().clone() for p in new]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    y = torch.tensor([0, 1])
    for _ in range(2):  # B starts at zero, so A's gradient appears from the second step on
        opt.zero_grad()
        nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in new)
    assert all(not torch.equal(p, b) for p, b in zip(new, before, strict=True))


def test_plain_checkpoint_loads_into_laurelized_net():
    plain = create_model("resnet8")
    lau = create_model("resnet8_laurel_rw_lr")
    missing, unexpected = lau.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(("alpha" in k or "beta" in k or "lr_" in k) for k in missing)
    plain.eval(), lau.eval()
    torch.testing.assert_close(lau(X), plain(X), rtol=0, atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ConfigError, match=r"no residual block.*BasicBlock"):
        laurelize(torchvision.models.mobilenet_v2(), "rw")
    with pytest.raises(ConfigError, match="no residual block"):
        laurelize(nn.Sequential(nn.Linear(3, 3)), "rw")
    net = laurelize(CifarResNet(8), "rw")
    with pytest.raises(ConfigError, match="already laurelized"):
        laurelize(net, "lr")
    with pytest.raises(ConfigError, match="unknown LAuReL variant"):
        parse_variant("rw_xx")
    with pytest.raises(ConfigError, match="rank >= 1"):
        parse_variant("lr", rank=0)
    with pytest.raises(ConfigError, match="k >= 2"):
        parse_variant("pa", k=1)
    # PA blocks share a history: calling a single block alone is refused with a clear message
    pa = laurelize(CifarResNet(8), "pa", k=3)
    block = pa.layer1[0]
    assert block.num_previous == 0 and pa.layer2[0].num_previous == 1
    pa(X)
    with pytest.raises(ConfigError, match="earlier inputs"):
        pa.layer2[0](torch.randn(1, 16, 8, 8))
