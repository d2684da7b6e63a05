import pytest
import torch

from hyperzoo.nets import WideResNet, create_model


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_wrn_parameter_counts():
    # Zagoruyko & Komodakis 2016, Table 1 / repo: WRN-28-10 36.5M, WRN-16-4 2.7M
    assert abs(n_params(create_model("wrn28_10")) - 36.5e6) / 36.5e6 < 0.01
    assert abs(n_params(create_model("wrn16_4")) - 2.75e6) / 2.75e6 < 0.01


def test_forward_and_dropout():
    model = WideResNet(16, 2, num_classes=100, dropout=0.3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert any(isinstance(m, torch.nn.Dropout) for m in model.modules())


def test_invalid_depth():
    with pytest.raises(ValueError, match="6n\\+4"):
        WideResNet(depth=17)
