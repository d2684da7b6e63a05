import pytest
import torch

from hyperzoo.nets import CifarResNet, create_model
from hyperzoo.nets.cifar_resnet import PadShortcut


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# He et al. 2016, Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M (option A shortcuts)
@pytest.mark.parametrize(
    ("name", "expected"),
    [("resnet20", 0.27e6), ("resnet32", 0.46e6), ("resnet44", 0.66e6), ("resnet56", 0.85e6), ("resnet110", 1.7e6)],
)
def test_parameter_counts_match_the_paper(name, expected):
    assert abs(n_params(create_model(name)) - expected) / expected < 0.02


def test_resnet20_exact_count_and_forward():
    model = create_model("resnet20")
    assert n_params(model) == 269_722
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert model.features(torch.randn(2, 3, 32, 32)).shape == (2, 64)


def test_option_b_adds_projections_and_width_scales():
    a, b = CifarResNet(20, shortcut="A"), CifarResNet(20, shortcut="B")
    assert n_params(b) > n_params(a)
    assert sum(isinstance(m, PadShortcut) for m in a.modules()) == 2
    assert sum(isinstance(m, PadShortcut) for m in b.modules()) == 0
    wide = CifarResNet(20, width=2)
    assert wide.fc.in_features == 128
    assert wide(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_pad_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    y = PadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


def test_invalid_depth_is_rejected():
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(21)
