import pytest
import torch
from torch import nn

from hyperzoo.nets import TORCHVISION_MODELS, adapt_to_cifar, create_model
from hyperzoo.nets.adapt import shrink_conv_kernel

# one model per family that the reference does not adapt (the reference families are checked above)
FAST = [
    "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5", "googlenet", "efficientnet_b0", "regnet_y_400mf",
    "convnext_tiny", "swin_t", "maxvit_t", "vit_b_32",
]  # fmt: skip


def test_resnet_adaptation_is_the_reference_one():
    net = create_model("resnet50", num_classes=10, adapt_cifar=True)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.padding == (1, 1)
    assert net.conv1.weight.shape == (64, 3, 3, 3)
    assert isinstance(net.maxpool, nn.Identity) and net.expected_input_size == 32


def test_densenet_mobilenet_vgg_squeezenet_adaptations():
    d = create_model("densenet121", num_classes=10, adapt_cifar=True)
    assert d.features[0].kernel_size == (3, 3) and d.features[0].stride == (1, 1)
    assert isinstance(d.features[3], nn.Identity)
    m = create_model("mobilenet_v2", num_classes=10, adapt_cifar=True)
    assert all(c.stride == (1, 1) for c in m.features[:5].modules() if isinstance(c, nn.Conv2d))
    assert any(c.stride == (2, 2) for c in m.features[5:].modules() if isinstance(c, nn.Conv2d))
    v = create_model("vgg11_bn", num_classes=10, adapt_cifar=True)
    assert not any(isinstance(x, nn.MaxPool2d) for x in v.features[:10])
    assert any(isinstance(x, nn.MaxPool2d) for x in v.features[10:])
    ref = create_model("squeezenet1_1", num_classes=10)
    s = create_model("squeezenet1_1", num_classes=10, adapt_cifar=True)
    assert [type(x) for x in s.modules()] == [type(x) for x in ref.modules()]


def test_shrink_keeps_the_kernel_centre():
    conv = nn.Conv2d(3, 4, 7, 2, 3)
    w = conv.weight.detach().clone()
    shrink_conv_kernel(conv, 3)
    assert torch.equal(conv.weight, w[:, :, 2:5, 2:5])
    with pytest.raises(ValueError):
        shrink_conv_kernel(conv, 5)


def test_vit_adaptation_keeps_a_working_model():
    net = create_model("vit_b_32", num_classes=10, adapt_cifar=True)
    assert net.patch_size == 4 and net.seq_length == 65
    assert net.encoder.pos_embedding.shape == (1, 65, 768)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="no 32x32 adaptation"):
        adapt_to_cifar(nn.Sequential(nn.Conv2d(3, 3, 3)))


def _check_32(name: str) -> None:
    net = create_model(name, num_classes=10, adapt_cifar=True).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", FAST)
def test_adapted_models_run_at_32(name):
    _check_32(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TORCHVISION_MODELS if n not in FAST])
def test_every_torchvision_model_runs_at_32(name):
    _check_32(name)
