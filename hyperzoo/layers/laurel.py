"""LAuReL: learned augmented residual layers for the residual blocks of CIFAR and torchvision ResNets.

Paper: Menghani, Kumar & Kumar, "LAuReL: Learned Augmented Residual Layer", ICML 2025, arXiv 2411.07501.

A plain residual block computes ``x_{i+1} = post(f(x_i) + s(x_i))`` with the residual branch ``f``, the
shortcut ``s`` (identity, or a projection when the shape changes) and ``post`` a ReLU. LAuReL replaces the sum:

    RW (residual weights):     alpha * f + beta * s
    LR (low rank, rank r):     f + s + B A s                  (A: 1x1 conv C -> r, B: 1x1 conv r -> C)
    PA (previous activations): f + s + sum_j gamma_j s(x_{i-j})   (j = 1..m-1, earlier block inputs)
    combinations:              alpha * f + beta * (s + B A s) + sum_j gamma_j s(x_{i-j})

Every variant equals the plain block at initialization: ``alpha = beta = 1``, ``B = 0`` and ``gamma = 0``.
(The paper mentions normalizing ``alpha`` and ``beta``, e.g. by a softmax, for stability; hyperzoo keeps the raw
scalars, which is what makes the identity at initialization exact.)
(``A`` therefore gets no gradient on the very first step, as in LoRA; it does from the second step on.)

Parameter counts per block with ``C`` output channels: RW 2, LR ``2 r C``, PA ``m``, where
``m = min(k - 1, p)`` and ``p`` is the number of directly preceding blocks whose inputs have the shape of this
block's input (the same stage; a shape-changing block ends the run). The block's own shortcut maps the earlier
inputs to the output shape, so PA also works across projection shortcuts. ``k`` counts the current input as the
paper's ``j = 0`` term, which RW's ``beta`` (or the plain shortcut) already covers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from hyperzoo.errors import ConfigError
from hyperzoo.nets.cifar_resnet import BasicBlock as CifarBasicBlock
from hyperzoo.nets.cifar_resnet import CifarResNet, PadShortcut
from hyperzoo.nets.factory import MODELS, register_model

__all__ = ["VARIANTS", "LaurelBlock", "LaurelConfig", "laurel_param_count", "laurelize", "parse_variant"]

VARIANTS = ("rw", "lr", "pa", "rw_lr", "rw_pa", "lr_pa", "rw_lr_pa")


@dataclass(frozen=True)
class LaurelConfig:
    """Which LAuReL parts a block uses.

    Args:
        rw: learned scalars ``alpha`` (residual branch) and ``beta`` (shortcut).
        rank: rank ``r`` of the low-rank term ``B A``; 0 disables LR.
        k: PA window (current input plus ``k - 1`` earlier block inputs); 0 or 1 disables PA.
    """

    rw: bool = False
    rank: int = 0
    k: int = 0

    @property
    def lr(self) -> bool:
        return self.rank > 0

    @property
    def pa(self) -> bool:
        return self.k > 1


def parse_variant(variant: str, rank: int = 4, k: int = 3) -> LaurelConfig:
    """``"rw"``, ``"lr"``, ``"pa"`` or an underscore combination such as ``"rw_lr_pa"`` -> :class:`LaurelConfig`.

    Raises:
        ConfigError: an unknown part, a non-positive rank with LR, or ``k < 2`` with PA.
    """
    parts = [p for p in re.split(r"[_+\-, ]+", variant.lower()) if p]
    unknown = [p for p in parts if p not in ("rw", "lr", "pa")]
    if not parts or unknown:
        raise ConfigError(
            f"unknown LAuReL variant {variant!r} (bad parts: {unknown or 'none given'}); "
            f"use one of {', '.join(VARIANTS)}"
        )
    if "lr" in parts and rank < 1:
        raise ConfigError(f"LAuReL variant {variant!r} needs rank >= 1, got rank={rank}")
    if "pa" in parts and k < 2:
        raise ConfigError(f"LAuReL variant {variant!r} needs k >= 2 (current + earlier inputs), got k={k}")
    return LaurelConfig(rw="rw" in parts, rank=rank if "lr" in parts else 0, k=k if "pa" in parts else 0)


# -- the residual blocks LAuReL knows: how to split each into residual branch f and shortcut s --


def _cifar_residual(m: Any, x: Tensor) -> Tensor:
    return m.bn2(m.conv2(F.relu(m.bn1(m.conv1(x)))))


def _tv_basic_residual(m: Any, x: Tensor) -> Tensor:
    return m.bn2(m.conv2(m.relu(m.bn1(m.conv1(x)))))


def _tv_bottleneck_residual(m: Any, x: Tensor) -> Tensor:
    out = m.relu(m.bn1(m.conv1(x)))
    out = m.relu(m.bn2(m.conv2(out)))
    return m.bn3(m.conv3(out))


def _out_channels(block: Any) -> int:
    last = block.bn3 if hasattr(block, "bn3") else block.bn2
    return int(last.num_features)


# block class -> (residual function, name of the shortcut attribute)
_BLOCKS: dict[type[nn.Module], tuple[Callable[[Any, Tensor], Tensor], str]] = {
    CifarBasicBlock: (_cifar_residual, "shortcut"),
    tv_resnet.BasicBlock: (_tv_basic_residual, "downsample"),
    tv_resnet.Bottleneck: (_tv_bottleneck_residual, "downsample"),
}


class _History:
    """Block inputs of the current forward pass, shared by the LAuReL-PA blocks of one network."""

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []


class LaurelBlock(nn.Module):
    """A residual block whose sum ``f(x) + s(x)`` is replaced by LAuReL (Menghani et al., ICML 2025).

    ``out = relu(alpha * f(x) + beta * (s(x) + B(A(s(x)))) + sum_j gamma_j * s(x_{i-j}))``, with ``alpha = beta = 1``,
    ``B = 0`` and ``gamma = 0`` at initialization, so a new LaurelBlock computes exactly what ``block`` did.
    The block's submodules keep their names (``conv1``, ``bn1``, ``shortcut``/``downsample``, ...), so a plain
    checkpoint loads into a laurelized network with ``strict=False`` (only the LAuReL parameters are missing).

    Args:
        block: a CIFAR :class:`~hyperzoo.nets.cifar_resnet.BasicBlock` or a torchvision ``BasicBlock`` /
            ``Bottleneck``; its submodules are taken over (not copied).
        config: the LAuReL parts to use.
        num_previous: PA only: how many earlier block inputs this block mixes in (``m`` in the module docstring).
        history: PA only: the store of block inputs shared by the blocks of one network.
        first: PA only: this block starts the network's chain and clears ``history``.

    Shapes:
        input ``(B, C_in, H, W)`` -> output ``(B, C_out, H / stride, W / stride)``, as the wrapped block.
    """

    def __init__(
        self,
        block: nn.Module,
        config: LaurelConfig,
        num_previous: int = 0,
        history: _History | None = None,
        first: bool = False,
    ) -> None:
        super().__init__()
        kind = type(block)
        if kind not in _BLOCKS:
            raise ConfigError(f"LaurelBlock cannot wrap {kind.__name__}; supported: {_supported_names()}")
        self._residual, self._shortcut_name = _BLOCKS[kind]
        self.block_type = kind.__name__
        for name, child in block.named_children():
            self.add_module(name, child)
        if getattr(self, self._shortcut_name, None) is None:  # torchvision: downsample=None means identity
            self.add_module(self._shortcut_name, nn.Identity())
        self.config = config
        channels = _out_channels(block)
        self.alpha = nn.Parameter(torch.ones(())) if config.rw else None
        self.beta = nn.Parameter(torch.ones(())) if config.rw else None
        self.lr_down = nn.Conv2d(channels, config.rank, 1, bias=False) if config.lr else None
        self.lr_up = nn.Conv2d(config.rank, channels, 1, bias=False) if config.lr else None
        self.gamma = nn.Parameter(torch.zeros(num_previous)) if config.pa and num_previous > 0 else None
        self.num_previous = num_previous if self.gamma is not None else 0
        self._history = history if config.pa else None
        self._first = first
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Resets only the LAuReL parameters (the identity init); the wrapped block's weights stay."""
        if self.alpha is not None and self.beta is not None:
            nn.init.ones_(self.alpha)
            nn.init.ones_(self.beta)
        if self.lr_down is not None and self.lr_up is not None:
            nn.init.kaiming_uniform_(self.lr_down.weight, a=5**0.5)
            nn.init.zeros_(self.lr_up.weight)
        if self.gamma is not None:
            nn.init.zeros_(self.gamma)

    def follow_widths(self) -> None:
        """Width surgery: a zero-padding shortcut takes its widths from the wrapped block's convolutions.

        Called by :func:`hyperzoo.nets.resize.resize_to_state`, as
        :meth:`hyperzoo.nets.cifar_resnet.BasicBlock.follow_widths`.
        """
        shortcut = getattr(self, self._shortcut_name)
        first, last = getattr(self, "conv1", None), getattr(self, "conv2", None)
        if isinstance(shortcut, PadShortcut) and isinstance(first, nn.Conv2d) and isinstance(last, nn.Conv2d):
            shortcut.follow(first, last)

    def laurel_parameters(self) -> list[nn.Parameter]:
        """The parameters LAuReL added (not those of the wrapped block)."""
        mods = [self.lr_down, self.lr_up]
        params = [p for p in (self.alpha, self.beta, self.gamma) if p is not None]
        return params + [m.weight for m in mods if m is not None]  # type: ignore[misc]

    def forward(self, x: Tensor) -> Tensor:
        shortcut: nn.Module = getattr(self, self._shortcut_name)
        f = self._residual(self, x)
        s = shortcut(x)
        if self.lr_down is not None and self.lr_up is not None:
            s = s + self.lr_up(self.lr_down(s))
        out = self.alpha * f + self.beta * s if self.alpha is not None and self.beta is not None else f + s
        hist = self._history
        if hist is not None:
            if self._first:
                hist.inputs.clear()
            if self.gamma is not None:
                previous = hist.inputs[-self.num_previous :]
                if len(previous) != self.num_previous or any(p.shape != x.shape for p in previous):
                    raise ConfigError(
                        f"LAuReL-PA block expected {self.num_previous} earlier inputs of shape {tuple(x.shape)}, "
                        "found fewer; call the laurelized network as a whole (its blocks share a history)"
                    )
                for g, p in zip(self.gamma, reversed(previous), strict=True):  # gamma_1 weighs x_{i-1}
                    out = out + g * shortcut(p)
            hist.inputs.append(x)
            del hist.inputs[: -max(1, self.config.k - 1)]  # keep only what later blocks can still use
        return F.relu(out)

    def extra_repr(self) -> str:
        c = self.config
        return f"{self.block_type}, rw={c.rw}, rank={c.rank}, k={c.k}, num_previous={self.num_previous}"


def _supported_names() -> str:
    return ", ".join(f"{k.__module__}.{k.__name__}" for k in _BLOCKS)


def _changes_shape(block: nn.Module) -> bool:
    s = getattr(block, _BLOCKS[type(block)][1], None)
    return s is not None and not isinstance(s, nn.Identity)


def laurelize(model: nn.Module, variant: str = "rw", rank: int = 4, k: int = 3) -> nn.Module:
    """Rewrites every residual block of ``model`` in place into a :class:`LaurelBlock`; returns ``model``.

    Handles hyperzoo's CIFAR ResNets (``BasicBlock``, option A and B shortcuts) and torchvision ResNets,
    ResNeXts and Wide ResNets (``BasicBlock``, ``Bottleneck``; projection shortcuts are the ``downsample``
    branch, to whose output LR is applied). Blocks run in module order, which is their forward order in these
    networks; PA relies on that.

    Args:
        model: the network to rewrite.
        variant: ``rw``, ``lr``, ``pa`` or a combination such as ``rw_lr`` or ``rw_lr_pa``.
        rank: rank of LR's ``B A`` term.
        k: PA window: the current input plus up to ``k - 1`` earlier block inputs.

    Raises:
        ConfigError: an unknown variant, or ``model`` has no residual block LAuReL knows (the message lists the
            block classes it looked for), or it is laurelized already.
    """
    config = parse_variant(variant, rank, k)
    if any(isinstance(m, LaurelBlock) for m in model.modules()):
        raise ConfigError(f"{type(model).__name__} is already laurelized; build a fresh model to change the variant")
    found = [(name, m) for name, m in model.named_modules() if type(m) in _BLOCKS]
    if not found:
        raise ConfigError(
            f"laurelize found no residual block in {type(model).__name__}: it looks for modules of type "
            f"{_supported_names()}; wrap other blocks with LaurelBlock after adding them to "
            "hyperzoo.layers.laurel._BLOCKS"
        )
    history = _History()
    run = 0  # directly preceding blocks whose input has this block's input shape
    for idx, (name, block) in enumerate(found):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        num_previous = min(config.k - 1, run) if config.pa else 0
        new = LaurelBlock(block, config, num_previous, history, first=idx == 0)
        if isinstance(parent, nn.Sequential) and child.isdigit():
            parent[int(child)] = new
        else:
            setattr(parent, child, new)
        run = 0 if _changes_shape(block) else run + 1
    return model


def laurel_param_count(model: nn.Module) -> int:
    """Number of parameters LAuReL added to ``model``."""
    return sum(p.numel() for m in model.modules() if isinstance(m, LaurelBlock) for p in m.laurel_parameters())


# -- registry: <base>_laurel_<variant> for CIFAR ResNets and torchvision ResNets, and a +1-block baseline --


def _laurel_entry(base: str, variant: str) -> Callable[..., nn.Module]:
    def entry(rank: int = 4, k: int = 3, **kwargs: Any) -> nn.Module:
        return laurelize(MODELS.get(base)(**kwargs), variant, rank=rank, k=k)

    entry.__doc__ = f"{base} with LAuReL-{variant.upper().replace('_', '+')} residuals (Menghani et al. 2025)."
    return entry


for _base in ("resnet8", "resnet20", "resnet32", "resnet56", "resnet18", "resnet34", "resnet50"):
    for _variant in VARIANTS:
        register_model(f"{_base}_laurel_{_variant}", family="laurel", paper="Menghani et al. 2025", base=_base)(
            _laurel_entry(_base, _variant)
        )


def _extra_block_entry(depth: int) -> Callable[..., nn.Module]:
    def entry(num_classes: int = 10, width: float = 1.0, stage: int = 1, **kwargs: Any) -> nn.Module:
        if stage not in (1, 2, 3):
            raise ConfigError(f"resnet{depth}_extra_block: stage must be 1, 2 or 3, got {stage}")
        net = CifarResNet(depth, num_classes, width, **kwargs)
        layer: nn.Sequential = getattr(net, f"layer{stage}")
        last: Any = layer[-1]
        c = int(last.conv2.out_channels)
        extra = CifarBasicBlock(c, c)
        nn.init.kaiming_normal_(extra.conv1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.kaiming_normal_(extra.conv2.weight, mode="fan_out", nonlinearity="relu")
        layer.append(extra)
        return net

    entry.__doc__ = f"ResNet-{depth} plus one basic block at the end of stage ``stage`` (the naive baseline)."
    return entry


for _depth in (8, 20, 32, 56):
    register_model(f"resnet{_depth}_extra_block", family="laurel", paper="baseline", base=f"resnet{_depth}")(
        _extra_block_entry(_depth)
    )
