"""Wide Residual Networks for CIFAR (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

WRN-d-k: a 3x3 stem conv with 16 filters, three stages of ``n = (d - 4) / 6`` pre-activation basic blocks with
``16k, 32k, 64k`` filters (stride 1, 2, 2), BN-ReLU, global average pooling and a linear classifier. A block is
``conv(relu(bn(conv(relu(bn(x)))))) + s(x)`` with optional dropout between the convs; ``s`` is a 1x1 conv when
the shape changes. WRN-28-10 has 36.5M parameters, WRN-16-4 2.7M.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperzoo.nets.cifar_resnet import he_init_
from hyperzoo.nets.factory import register_model

__all__ = ["WideBasicBlock", "WideResNet"]


class WideBasicBlock(nn.Module):
    """Pre-activation basic block of a WRN.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first conv.
        dropout: dropout probability between the two convs.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(self.bn1(x))
        # the projection shortcut sees the pre-activated input (as in the reference Torch code)
        s = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(o)
        o = self.conv2(self.dropout(F.relu(self.bn2(self.conv1(o)))))
        return o + s


class WideResNet(nn.Module):
    """WRN-depth-widen for 32x32 images.

    Args:
        depth: ``6n + 4`` (16, 22, 28, 40, ...).
        widen: width multiplier ``k``.
        num_classes: classifier outputs.
        dropout: dropout inside the blocks (the paper uses 0.3 for some runs; 0 by default).
        in_channels: input image channels.

    Shapes:
        input ``(B, in_channels, 32, 32)`` -> ``(B, num_classes)``.
    """

    def __init__(
        self, depth: int = 28, widen: int = 10, num_classes: int = 10, dropout: float = 0.0, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.expected_input_size = 32  # graph_from_module traces it at its own resolution
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.depth, self.widen = depth, widen
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        stages, c_in = [], 16
        for i, c in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(WideBasicBlock(c_in, c, stride=(1 if i == 0 else 2) if j == 0 else 1, dropout=dropout))
                c_in = c
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(c_in)
        self.fc = nn.Linear(c_in, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        he_init_(self)

    def features(self, x: Tensor) -> Tensor:
        """Pooled penultimate features ``(B, 64 * widen)``."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def _register(depth: int, widen: int) -> None:
    def entry(num_classes: int = 10, dropout: float = 0.0, in_channels: int = 3) -> nn.Module:
        return WideResNet(depth, widen, num_classes, dropout, in_channels)

    entry.__doc__ = f"WRN-{depth}-{widen} for CIFAR (Zagoruyko & Komodakis 2016)."
    register_model(f"wrn{depth}_{widen}", family="wide_resnet", paper="Zagoruyko & Komodakis 2016")(entry)


for _depth, _widen in ((16, 1), (16, 2), (16, 4), (16, 8), (22, 8), (28, 2), (28, 10), (40, 2), (40, 4)):
    _register(_depth, _widen)
