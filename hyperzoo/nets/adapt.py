"""Adapting torchvision ImageNet classifiers to 32x32 inputs (CIFAR).

The five families the reference GHN-2 code adapts (``ppuda.utils.adjust_net``) are adapted exactly as it does,
so that graphs and predicted parameters match the reference (see ``conformance/README.md``):

========================  =================================================================================
ResNet / ResNeXt / WRN    ``conv1`` becomes a 3x3 conv, stride 1, padding 1 (centre of the 7x7 kernel kept);
                          ``maxpool`` becomes ``nn.Identity()``
DenseNet                  ``features[0]`` the same 3x3/stride 1/padding 1 conv; ``features[3]`` (max pool)
                          ``nn.Identity()``
MobileNetV2 / V3          stride 1 for every ``nn.Conv2d`` inside ``features[:5]``
VGG                       every ``nn.MaxPool2d`` among ``features[:10]`` becomes ``nn.Identity()``
SqueezeNet                unchanged
========================  =================================================================================

The reference also touches AlexNet, MNASNet, ShuffleNetV2, GoogLeNet and ConvNeXt; for GoogLeNet and
ShuffleNetV2 it sets ``stride`` on a container (a no-op), so here the stride of the conv inside is changed. The
other families follow one rule: remove the first two stride-2 downsamplings of the stem (total stride 32 -> 8,
so a 32x32 input ends on a 4x4 map, as in a CIFAR ResNet), changing strides only, never parameter shapes,
wherever the family allows it:

========================  =================================================================================
AlexNet                   ``features[0]`` stride 1, ``features[2]`` (max pool) ``nn.Identity()`` (reference)
MNASNet                   ``layers[0]`` stride 1 (reference)
ShuffleNetV2              ``conv1`` conv stride 1, ``maxpool`` ``nn.Identity()``
GoogLeNet                 ``conv1`` conv stride 1, ``maxpool1`` ``nn.Identity()``; no auxiliary heads
Inception-v3              ``Conv2d_1a_3x3`` stride 1, ``maxpool1`` ``nn.Identity()``; no auxiliary head
ConvNeXt                  the 4x4 patchify stem conv stride 1 (reference)
EfficientNet v1 / v2      stem conv stride 1 and the first stride-2 stage's first block stride 1
RegNet X / Y              stem conv stride 1 and the first stage's first block (its 3x3 conv and projection)
                          stride 1
Swin v1 / v2              patch embedding (4x4 conv) stride 2, padding 1: 16x16 tokens instead of 8x8
ViT                       patch size 4 instead of 14/16/32 (64 tokens): the patch kernel is resized
                          (area-preserving interpolation) and the position embeddings are interpolated
MaxViT                    built for 32x32 with partition size 2 (the default 7 divides no 32x32 stage grid)
                          and the stem's first conv at stride 1: stage maps 16, 8, 4, 2
========================  =================================================================================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

__all__ = ["adapt_to_cifar", "shrink_conv_kernel"]


def shrink_conv_kernel(conv: nn.Conv2d, kernel_size: int = 3, stride: int = 1) -> None:
    """Keeps the centre ``kernel_size x kernel_size`` of ``conv``'s kernel, with 'same' padding, in place."""
    kh, kw = conv.kernel_size
    if kh < kernel_size or kw < kernel_size:
        raise ValueError(f"cannot shrink a {kh}x{kw} kernel to {kernel_size}x{kernel_size}")
    top, left = (kh - kernel_size) // 2, (kw - kernel_size) // 2
    with torch.no_grad():
        weight = conv.weight[:, :, top : top + kernel_size, left : left + kernel_size].clone()
    conv.weight = nn.Parameter(weight)
    conv.kernel_size = (kernel_size, kernel_size)
    conv.padding = (kernel_size // 2, kernel_size // 2)
    conv.stride = (stride, stride)


def _unstride(module: nn.Module) -> None:
    """Sets stride 1 on every conv inside ``module`` (the module itself included)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.stride = (1, 1)


def _adapt_vit(net: tvm.VisionTransformer, patch_size: int = 4, image_size: int = 32) -> None:
    old_p = net.patch_size
    grid_old, grid_new = net.image_size // old_p, image_size // patch_size
    conv = net.conv_proj
    new = nn.Conv2d(conv.in_channels, conv.out_channels, patch_size, patch_size, bias=conv.bias is not None)
    with torch.no_grad():
        # resizing the kernel by area interpolation and rescaling keeps the response to a constant patch
        w = F.interpolate(conv.weight, size=(patch_size, patch_size), mode="area")
        new.weight.copy_(w * (old_p / patch_size) ** 2)
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
        pos = net.encoder.pos_embedding  # (1, 1 + grid_old^2, D)
        cls_pos, grid_pos = pos[:, :1], pos[:, 1:]
        grid_pos = grid_pos.reshape(1, grid_old, grid_old, -1).permute(0, 3, 1, 2)  # (1, D, g, g)
        grid_pos = F.interpolate(grid_pos, size=(grid_new, grid_new), mode="bicubic", align_corners=False)
        grid_pos = grid_pos.permute(0, 2, 3, 1).reshape(1, grid_new * grid_new, -1)
        net.encoder.pos_embedding = nn.Parameter(torch.cat([cls_pos, grid_pos], dim=1))
    net.conv_proj = new
    net.patch_size, net.image_size = patch_size, image_size
    net.seq_length = grid_new * grid_new + 1


def build_maxvit_t_cifar(num_classes: int = 1000, **kwargs: object) -> tvm.MaxVit:
    """``maxvit_t``'s architecture built for 32x32 inputs (see the module docstring)."""
    cfg: dict = dict(
        stem_channels=64, block_channels=[64, 128, 256, 512], block_layers=[2, 2, 5, 2], head_dim=32,
        stochastic_depth_prob=0.2, partition_size=2,
    )  # fmt: skip
    cfg.update(kwargs)
    # grid sizes are fixed at construction: a 64x64 input with a stride-2 stem gives the same stage grids
    # (16, 8, 4, 2) as a 32x32 input with a stride-1 stem
    net = tvm.MaxVit(input_size=(64, 64), num_classes=num_classes, **cfg)
    _unstride(net.stem[0])
    return net


def adapt_to_cifar(net: nn.Module) -> nn.Module:
    """Adapts a torchvision classifier to 32x32 inputs in place (table in the module docstring).

    Sets ``net.expected_input_size = 32``. Unknown families are returned unchanged with a warning-free
    ``expected_input_size`` of 32 only if they already accept 32x32 inputs; otherwise ``ValueError``.
    """
    if isinstance(net, tvm.ResNet):
        shrink_conv_kernel(net.conv1)
        net.maxpool = nn.Identity()
    elif isinstance(net, tvm.DenseNet):
        shrink_conv_kernel(net.features[0])
        if not isinstance(net.features[3], nn.MaxPool2d):
            raise ValueError(f"expected a max pool at DenseNet features[3], found {net.features[3]}")
        net.features[3] = nn.Identity()
    elif isinstance(net, (tvm.MobileNetV2, tvm.MobileNetV3)):
        for m in net.features[:5]:
            _unstride(m)
    elif isinstance(net, tvm.VGG):
        for i, m in enumerate(net.features[:10]):
            if isinstance(m, nn.MaxPool2d):
                net.features[i] = nn.Identity()
    elif isinstance(net, tvm.SqueezeNet):
        pass
    elif isinstance(net, tvm.AlexNet):
        net.features[0].stride = (1, 1)
        net.features[2] = nn.Identity()
    elif isinstance(net, tvm.MNASNet):
        net.layers[0].stride = (1, 1)
    elif isinstance(net, tvm.ShuffleNetV2):
        _unstride(net.conv1)
        net.maxpool = nn.Identity()
    elif isinstance(net, tvm.GoogLeNet):
        if net.aux_logits:
            raise ValueError("adapt googlenet built with aux_logits=False: its auxiliary heads need >= 64x64")
        _unstride(net.conv1)
        net.maxpool1 = nn.Identity()
    elif isinstance(net, tvm.Inception3):
        if net.aux_logits:
            raise ValueError("adapt inception_v3 built with aux_logits=False: its auxiliary head needs >= 75x75")
        _unstride(net.Conv2d_1a_3x3)
        net.maxpool1 = nn.Identity()
    elif isinstance(net, tvm.ConvNeXt):
        _unstride(net.features[0][0])
    elif isinstance(net, tvm.EfficientNet):
        _unstride(net.features[0])
        stage = next(s for s in net.features[1:] if any(_has_stride2(m) for m in s[0].modules()))
        _unstride(stage[0])
    elif isinstance(net, tvm.RegNet):
        _unstride(net.stem)
        _unstride(net.trunk_output[0][0])
    elif isinstance(net, tvm.SwinTransformer):
        conv = net.features[0][0]
        conv.stride, conv.padding = (2, 2), (1, 1)
    elif isinstance(net, tvm.VisionTransformer):
        _adapt_vit(net)
    elif isinstance(net, tvm.MaxVit):
        if getattr(net, "expected_input_size", None) != 32:
            raise ValueError("MaxViT must be built for 32x32: use create_model('maxvit_t', adapt_cifar=True)")
    else:
        raise ValueError(f"no 32x32 adaptation is known for {type(net).__name__}; build it for its native input size")
    net.expected_input_size = 32
    return net


def _has_stride2(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.stride != (1, 1)
