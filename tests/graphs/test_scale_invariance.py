"""Which layers a batch norm makes scale-invariant, and rescaling them without changing the function."""

from __future__ import annotations

import torch
from torch import nn

from hyperzoo.graphs.scale_invariance import match_norms, normalized_layers
from hyperzoo.nets import create_model


class Mixed(nn.Module):
    """conv->bn (invariant), conv->relu->bn (not: an activation between), conv->bn and a residual use (not)."""

    expected_input_size = 8

    def __init__(self) -> None:
        super().__init__()
        self.a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.b, self.bn_b = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.c, self.bn_c = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_a(self.a(x))
        x = self.bn_b(torch.relu(self.b(x)))
        y = self.c(x)
        x = self.bn_c(y) + y
        return self.fc(x.mean((2, 3)))


def test_only_layers_feeding_a_batch_norm_alone_and_directly():
    assert normalized_layers(Mixed()) == ["a"]
    net = create_model("resnet20", num_classes=10)
    layers = normalized_layers(net)
    assert "fc" not in layers and "conv1" in layers and len(layers) == 19  # every conv of ResNet-20, not the head


def test_match_norms_sets_the_norms_and_keeps_the_function():
    torch.manual_seed(0)
    net = create_model("resnet20", num_classes=10).train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
    targets = {k: 3.0 * float(p.norm()) for k, p in net.named_parameters()}
    factors = match_norms(net, targets, x)
    assert len(factors) == 19 and all(abs(f - 3.0) < 1e-5 for f in factors.values())
    assert abs(float(net.fc.weight.norm()) * 3.0 - targets["fc.weight"]) < 1e-5  # the head is not rescaled
    with torch.no_grad():
        torch.testing.assert_close(net(x), before, rtol=1e-4, atol=1e-4)
