"""ResNets for CIFAR (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Sec. 4.2).

The network is a 3x3 stem conv with 16 filters, then three stages of ``n`` basic blocks with 16, 32 and 64
filters on 32x32, 16x16 and 8x8 maps, global average pooling and a linear classifier: ``6n + 2`` weighted
layers (ResNet-20: n=3, 0.27M parameters).

Shortcuts (paper, Sec. 3.3):
    * option **A** (the paper's CIFAR choice, the default): identity; when the shape changes, stride-2
      subsampling plus zero-padding of the new channels, so the shortcut has no parameters;
    * option **B**: a 1x1 conv + BatchNorm projection when the shape changes, identity otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperzoo.nets.factory import register_model

__all__ = ["BasicBlock", "CifarResNet", "PadShortcut", "he_init_"]


def he_init_(module: nn.Module) -> None:
    """He (fan-out) init for every conv, unit scale and zero shift for every BatchNorm, zero linear biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


Shortcut = Literal["A", "B"]


class PadShortcut(nn.Module):
    """Option-A shortcut: take every ``stride``-th pixel and zero-pad the new channels (no parameters).

    Shapes:
        input ``(B, C_in, H, W)`` -> output ``(B, C_out, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        # pad the channel dimension symmetrically, as in the original Torch implementation
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"

    def follow(self, first: nn.Conv2d, last: nn.Conv2d) -> None:
        """Takes the widths of the residual branch beside it, after width surgery (:mod:`hyperzoo.nets.resize`).

        Args:
            first: the branch's first convolution (its input channels are the block's input).
            last: the branch's last convolution (its output channels are the block's output).
        """
        self.in_channels, self.out_channels = first.in_channels, last.out_channels


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + s(x))``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first conv (2 at the start of a stage).
        shortcut: ``"A"`` (parameter-free) or ``"B"`` (1x1 conv projection) when the shape changes.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: Shortcut = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            if shortcut == "A":
                self.shortcut = PadShortcut(in_channels, out_channels, stride)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
                )
            else:
                raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")

    def follow_widths(self) -> None:
        """Width surgery: a zero-padding shortcut takes its widths from the convolutions of the residual branch.

        Called by :func:`hyperzoo.nets.resize.resize_to_state` (the shortcut has no tensor to carry its widths).
        """
        if isinstance(self.shortcut, PadShortcut):
            self.shortcut.follow(self.conv1, self.conv2)

    def residual(self, x: Tensor) -> Tensor:
        """The residual branch ``f(x)`` (before the addition)."""
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.residual(x) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images (He et al. 2016, Sec. 4.2).

    Args:
        depth: ``6n + 2`` (20, 32, 44, 56, 110, 1202; 8 is a tiny test variant).
        num_classes: classifier outputs.
        width: multiplier of the stage widths 16/32/64 (``width=2`` gives 32/64/128).
        shortcut: ``"A"`` (zero-padding identity, the paper's CIFAR choice) or ``"B"`` (1x1 projections).
        in_channels: input image channels.

    Shapes:
        input ``(B, in_channels, 32, 32)`` (any size works; 32x32 is the design point) -> ``(B, num_classes)``.
    """

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        width: float = 1.0,
        shortcut: Shortcut = "A",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.expected_input_size = 32  # graph_from_module traces it at its own resolution
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 20, 32, ...), got {depth}")
        n = (depth - 2) // 6
        widths = [int(round(c * width)) for c in (16, 32, 64)]
        self.depth, self.width, self.shortcut_type = depth, width, shortcut
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, c_in = [], widths[0]
        for i, c in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(c_in, c, stride=2 if (i > 0 and j == 0) else 1, shortcut=shortcut))
                c_in = c
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(c_in, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (fan-out) init for convs, as in the paper; unit BN scale, zero BN shift."""
        he_init_(self)
        nn.init.kaiming_uniform_(self.fc.weight, a=5**0.5)

    def features(self, x: Tensor) -> Tensor:
        """Pooled penultimate features ``(B, 64 * width)``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def _register(depth: int) -> None:
    def entry(num_classes: int = 10, width: float = 1.0, shortcut: Shortcut = "A", in_channels: int = 3) -> nn.Module:
        return CifarResNet(depth, num_classes, width, shortcut, in_channels)

    entry.__doc__ = f"ResNet-{depth} for CIFAR (He et al. 2016), option-A shortcuts by default."
    register_model(f"resnet{depth}", family="cifar_resnet", paper="He et al. 2016", depth=depth)(entry)


for _depth in (8, 20, 32, 44, 56, 110, 1202):
    _register(_depth)
