"""The operations of DeepNets-1M cells.

Module attributes follow the reference (ppuda ``deepnets1m/ops.py``) so that parameter names match it exactly
(``cells.3._ops.0.op.1.weight``, ``preprocess0.conv_1.weight``, ``_ops.1.to_qkv.weight``, ...): published
DeepNets-1M files and GHN checkpoints address parameters by these names.

Ops (``name`` in genotypes -> module):
    * ``conv_KxK`` -> :class:`ReLUConvBN`; ``conv_7x1_1x7`` -> :class:`ReLUConvBN` with ``double=True``;
    * ``sep_conv_KxK`` -> :class:`SepConv` (DARTS separable conv, applied twice);
    * ``dil_conv_KxK`` -> :class:`DilConv` (dilated depthwise + pointwise);
    * ``skip_connect`` -> identity, or :class:`FactorizedReduce` when the op reduces resolution;
    * ``none`` -> :class:`Zero`; ``max_pool_3x3`` / ``avg_pool_3x3`` -> torch pooling;
    * ``msa`` -> :class:`Transformer` (a pre-LN ViT block); ``cse`` -> :class:`ChannelSELayer`.

Einops axes: b = batch, c = channels, h/w = height/width, n = tokens (h*w), g = heads, d = channels per head.
"""

from __future__ import annotations

import re

import torch
from einops import rearrange
from torch import Tensor, nn

__all__ = [
    "ChannelSELayer",
    "DilConv",
    "FactorizedReduce",
    "FeedForward",
    "PosEnc",
    "ReLUConvBN",
    "SepConv",
    "Stride",
    "Transformer",
    "Zero",
    "build_op",
    "norm_layer",
    "parse_op",
]


def norm_layer(norm: str | None, channels: int) -> nn.Module:
    """The normalization after a conv.

    Args:
        norm: ``None``/``""``/``"none"`` for no normalization; a name starting with ``"bn"`` for BatchNorm2d,
            which tracks running statistics only if the name contains ``"track"`` (``"bn-track"``, the
            Network default; DeepNets-1M files store ``"bnorm"``, batch statistics only, as used for GHN
            training).
        channels: number of channels.
    """
    if norm in (None, "", "none"):
        return nn.Identity()
    if norm.startswith("bn"):
        return nn.BatchNorm2d(channels, track_running_stats="track" in norm)
    raise ValueError(f"unknown norm {norm!r}: use None, 'bn' or 'bn-track'")


_KS = re.compile(r"^\d+x\d+$")


def parse_op(name: str) -> tuple[str, int]:
    """Splits an op name into its kind and kernel size.

    ``"sep_conv_5x5" -> ("sep_conv", 5)``, ``"conv_7x1_1x7" -> ("conv2", 7)`` (two factorized convs),
    ``"skip_connect" -> ("skip_connect", 0)``.
    """
    kind, ks, n_sizes = [], 0, 0
    for part in name.split("_"):
        if _KS.match(part):
            ks = max(ks, *(int(v) for v in part.split("x")))
            n_sizes += 1
        else:
            kind.append(part)
    return "_".join(kind) + ("2" if n_sizes > 1 else ""), ks


class ReLUConvBN(nn.Module):
    """ReLU -> conv (or a 1xk then kx1 pair when ``double``) -> norm.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        ks: int = 1,
        stride: int = 1,
        padding: int = 0,
        norm: str | None = "bn",
        double: bool = False,
    ) -> None:
        super().__init__()
        self.stride = stride
        if double:
            convs = [
                nn.Conv2d(C_in, C_in, (1, ks), stride=(1, stride), padding=(0, padding), bias=False),
                nn.Conv2d(C_in, C_out, (ks, 1), stride=(stride, 1), padding=(padding, 0), bias=False),
            ]
        else:
            convs = [nn.Conv2d(C_in, C_out, ks, stride=stride, padding=padding, bias=False)]
        self.op = nn.Sequential(nn.ReLU(inplace=False), *convs, norm_layer(norm, C_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> 1x1 conv -> norm.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        ks: int,
        stride: int,
        padding: int,
        dilation: int,
        norm: str | None = "bn",
    ) -> None:
        super().__init__()
        self.stride = stride
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, ks, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            norm_layer(norm, C_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two DARTS separable convs: (ReLU -> depthwise -> 1x1 -> norm) x 2; only the first one strides.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``.
    """

    def __init__(self, C_in: int, C_out: int, ks: int, stride: int, padding: int, norm: str | None = "bn") -> None:
        super().__init__()
        self.stride = stride
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, ks, stride, padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, 1, bias=False),
            norm_layer(norm, C_in),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, ks, 1, padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            norm_layer(norm, C_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class Stride(nn.Module):
    """Spatial subsampling by taking every ``stride``-th pixel (no parameters)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]


class Zero(nn.Module):
    """The ``none`` op. Cells skip it in their forward pass, so it never appears in a computation graph."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two 1x1 convs on pixel grids offset by one, concatenated, then norm.

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``; ``C_out`` must be even.
    """

    def __init__(self, C_in: int, C_out: int, norm: str | None = "bn", stride: int = 2) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=stride, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=stride, bias=False)
        self.bn = norm_layer(norm, C_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:] if self.stride > 1 else x
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class ChannelSELayer(nn.Module):
    """Channel squeeze-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018).

    ``y = x * hardswish(fc2(relu(fc1(mean_hw(x)))))``, then subsampled by ``stride``. DeepNets-1M gates with
    Hardswish instead of a sigmoid; the attribute keeps the reference's name ``sigmoid``.

    Args:
        num_channels: channels C (input and output).
        reduction_ratio: the bottleneck has ``C // reduction_ratio`` units.
        dim_out: must equal ``num_channels`` if given.
        stride: spatial subsampling of the output.

    Shapes:
        ``(B, C, H, W) -> (B, C, H / stride, W / stride)``.
    """

    def __init__(
        self, num_channels: int, reduction_ratio: int = 2, dim_out: int | None = None, stride: int = 1
    ) -> None:
        super().__init__()
        if dim_out is not None and dim_out != num_channels:
            raise ValueError(f"ChannelSELayer keeps the channel count: {num_channels} != {dim_out}")
        self.reduction_ratio = reduction_ratio
        self.stride = stride
        self.fc1 = nn.Linear(num_channels, num_channels // reduction_ratio, bias=True)
        self.fc2 = nn.Linear(num_channels // reduction_ratio, num_channels, bias=True)
        self.relu = nn.ReLU()
        self.sigmoid = nn.Hardswish()

    def forward(self, x: Tensor) -> Tensor:
        squeezed = x.flatten(2).mean(dim=2)  # (b, c)
        gate = self.sigmoid(self.fc2(self.relu(self.fc1(squeezed))))
        out = torch.mul(x, rearrange(gate, "b c -> b c 1 1"))
        return out[:, :, :: self.stride, :: self.stride] if self.stride > 1 else out


class FeedForward(nn.Module):
    """Transformer MLP: Linear -> GELU -> Dropout -> Linear -> Dropout (in ``net``, as in the reference)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PosEnc(nn.Module):
    """Learned positional encoding added to the stem output of ViT-style networks.

    Args:
        C: channels.
        ks: spatial size of the encoding (14 for 224x224 inputs, 11 for 32x32).

    Shapes:
        ``(B, C, ks, ks) -> (B, C, ks, ks)``; ``weight``: ``(1, C, ks, ks)``.
    """

    def __init__(self, C: int, ks: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, C, ks, ks))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.weight


class Transformer(nn.Module):
    """A pre-LN Vision Transformer block on feature maps (Dosovitskiy et al., ICLR 2021).

    ``z = x + out(MSA(ln1(x)))``; ``y = z + ff(ln2(z))``, with pixels as tokens and ``heads`` heads of
    ``dim // heads`` channels, qkv without bias. The reference adapts the block from lucidrains' vit-pytorch.

    Args:
        dim: input channels.
        dim_out: output channels (the residual needs ``dim_out == dim``).
        heads: attention heads.
        dim_head: channels per head (default ``dim // heads``).
        dropout: dropout after the output projection.
        stride: spatial subsampling of the output.

    Shapes:
        ``(B, C, H, W) -> (B, C, H / stride, W / stride)`` or ``(B, N, C) -> (B, N, C)``.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int | None = None,
        heads: int = 8,
        dim_head: int | None = None,
        dropout: float = 0.0,
        stride: int = 1,
    ) -> None:
        super().__init__()
        dim_out = dim if dim_out is None else dim_out
        dim_head = dim // heads if dim_head is None else dim_head
        inner_dim = dim_head * heads
        self.heads = heads
        self.scale = dim_head**-0.5
        self.stride = stride
        # attribute order defines the parameter order: keep the reference's
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim_out), nn.Dropout(dropout))
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim_out)
        self.ff = FeedForward(dim, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        spatial = x.dim() == 4
        if spatial:
            h, w = x.shape[-2:]
            x = rearrange(x, "b c h w -> b (h w) c")
        q, k, v = self.to_qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b n (g d) -> b g n d", g=self.heads) for t in (q, k, v))
        attn = (torch.einsum("bgid,bgjd->bgij", q, k) * self.scale).softmax(dim=-1)
        out = rearrange(torch.einsum("bgij,bgjd->bgid", attn, v), "b g n d -> b n (g d)")
        out = self.to_out(out) + x
        out = self.ff(self.ln2(out)) + out
        if spatial:
            out = rearrange(out, "b (h w) c -> b c h w", h=h, w=w)
            if self.stride > 1:
                out = out[:, :, :: self.stride, :: self.stride]
        return out


def build_op(name: str, C_in: int, C_out: int, stride: int, norm: str | None) -> nn.Module:
    """Builds the module of a genotype op.

    Args:
        name: an op of :data:`~hyperzoo.nets.deepnets1m.genotypes.PRIMITIVES_DARTS_EXT`, or ``conv_stride``
            (the ViT patchify stem, kernel = stride = the given size).
        C_in: input channels.
        C_out: output channels.
        stride: 1, or 2 in reduction cells.
        norm: see :func:`norm_layer`.
    """
    kind, ks = parse_op(name)
    if kind == "none":
        return Zero(stride)
    if kind == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C_in, C_out, norm=norm)
    if kind == "avg_pool":
        return nn.AvgPool2d(ks, stride=stride, padding=ks // 2, count_include_pad=False)
    if kind == "max_pool":
        return nn.MaxPool2d(ks, stride=stride, padding=ks // 2)
    if kind == "conv":
        return ReLUConvBN(C_in, C_out, ks, stride, ks // 2, norm)
    if kind == "conv2":
        return ReLUConvBN(C_in, C_out, ks, stride, ks // 2, norm, double=True)
    if kind == "sep_conv":
        return SepConv(C_in, C_out, ks, stride, ks // 2, norm=norm)
    if kind == "dil_conv":
        # dilation 2 doubles the receptive field; padding ks - ks % 2 keeps the resolution
        return DilConv(C_in, C_out, ks, stride, ks - ks % 2, 2, norm=norm)
    if kind == "msa":
        return Transformer(C_in, dim_out=C_out, stride=stride)
    if kind == "cse":
        return ChannelSELayer(C_in, dim_out=C_out, stride=stride)
    raise ValueError(f"unknown DeepNets-1M op {name!r}")


def conv_stride(C_in: int, C_out: int, ks: int) -> nn.Conv2d:
    """The ViT stem: a ``ks x ks`` conv with stride ``ks`` (patchify); padding 1 for small CIFAR patches."""
    return nn.Conv2d(C_in, C_out, ks, stride=ks, bias=False, padding=int(ks < 4))
