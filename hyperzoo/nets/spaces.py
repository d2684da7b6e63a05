"""Architecture spaces: families of networks to generate graph datasets from (``hyperzoo graphs generate --space``).

A space is a sampler ``(rng: random.Random) -> (nn.Module, net_args)`` registered by name in :data:`SPACES`.
The stored ``net_args`` (JSON) rebuild the network with :func:`build_space_network`, which is what GHN training
does with a family store (:func:`hyperzoo.lightning.ghn_module.build_target`). Built-in spaces:

* ``resnet``: torchvision ResNet/ResNeXt/Wide-ResNet variants built with
  :class:`torchvision.models.resnet.ResNet` and its ``BasicBlock``/``Bottleneck``: block type, blocks per stage,
  base width, groups and width per group, stem for 32x32 (``adapt_to_cifar``) or 224x224 inputs. ResNet-18/34/
  50/101 and WRN-50-2 are points of the space and are held out by default.
* ``mobilenet``: torchvision MobileNetV2 with a sampled ``inverted_residual_setting`` and width multiplier;
  ``mobilenet_v2`` is held out.

Your own space::

    from hyperzoo.nets.spaces import register_space

    def tiny_mlps(rng):
        hidden = rng.choice([64, 128, 256])
        net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        return net, {"hidden": hidden}

    register_space("tiny_mlps", tiny_mlps)

or, without registering, pass ``--space my_package.my_module:tiny_mlps`` (an importable ``module:callable``).
A user space's networks are rebuilt by drawing again with the stored seed (``net_args["draw_seed"]``), so the
callable must depend on nothing but ``rng``; give ``build=`` to rebuild from ``net_args`` instead.
``holdout={"name": net_args, ...}`` (built-in spaces) or ``holdout={"name": callable_returning_module}`` names
networks whose graphs a generated training store never contains (compared by
:func:`hyperzoo.graphs.graph_hash.graph_hash`).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.registry import Registry

__all__ = [
    "SPACES",
    "Space",
    "build_space_network",
    "get_space",
    "list_spaces",
    "mobilenet_net_args",
    "register_space",
    "resnet_net_args",
]

Sampler = Callable[[random.Random], tuple[nn.Module, dict[str, Any]]]


@dataclass
class Space:
    """A registered architecture space.

    Args:
        name: the registered name (stored as ``net_args["space"]``).
        sample: ``(rng) -> (module, net_args)``.
        build: ``(net_args, num_classes) -> module`` (None: draw again with ``net_args["draw_seed"]``).
        holdout: held-out networks, ``{name: net_args}`` (rebuilt with ``build``) or ``{name: () -> module}``.
        input_size: image side the graphs are traced at (32 or 224; a built-in space's ``stem`` decides).
    """

    name: str
    sample: Sampler
    build: Callable[[Mapping[str, Any], int], nn.Module] | None = None
    holdout: dict[str, Any] = field(default_factory=dict)
    input_size: int = 32

    def rebuild(self, net_args: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        """The network of stored ``net_args`` (``{"holdout": name}``: the held-out network ``name``)."""
        if "holdout" in net_args and net_args["holdout"] in self.holdout:
            return self.holdout_module(str(net_args["holdout"]), num_classes)
        if self.build is not None:
            return self.build(net_args, num_classes)
        if "draw_seed" not in net_args:
            raise ConfigError(f"net_args of space {self.name!r} have no draw_seed to rebuild from: {dict(net_args)}")
        return self.sample(random.Random(int(net_args["draw_seed"])))[0]

    def holdout_module(self, name: str, num_classes: int = 10) -> nn.Module:
        """The held-out network ``name``."""
        spec = self.holdout[name]
        return spec() if callable(spec) else self.rebuild({**spec, "space": self.name}, num_classes)


SPACES: Registry[Any] = Registry("architecture space", "list them with hyperzoo.nets.spaces.list_spaces()")


def register_space(
    name: str,
    sample: Sampler,
    build: Callable[[Mapping[str, Any], int], nn.Module] | None = None,
    holdout: Mapping[str, Any] | None = None,
    input_size: int = 32,
) -> Space:
    """Registers a space (see the module docstring); raises ``ValueError`` if the name is taken."""
    space = Space(name, sample, build, dict(holdout or {}), input_size)
    SPACES.add(name, space, family="user")
    return space


def get_space(name: str) -> Space:
    """The space registered as ``name``, or ``"module:callable"`` imported and registered under that string."""
    if name not in SPACES and ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"space {name!r}: cannot import {attr!r} from module {module!r} ({e})") from None
        if isinstance(obj, Space):
            return obj
        if not callable(obj):
            raise ConfigError(f"space {name!r} is not callable; give a function (rng) -> (nn.Module, net_args)")
        if name not in SPACES:
            register_space(name, obj)
    space: Space = SPACES.get(name)
    return space


def list_spaces() -> list[str]:
    """Registered space names."""
    return SPACES.names()


def build_space_network(
    net_args: Mapping[str, Any], num_classes: int = 10, device: torch.device | str | None = None, light: bool = False
) -> nn.Module:
    """Rebuilds the network of a family store's ``net_args`` (``net_args["space"]`` names the space).

    Args:
        net_args: stored net_args.
        num_classes: classifier outputs (built-in spaces; a user space's sampler fixes its own).
        device: build on this device (``"meta"``: structure only).
        light: skip random initialisation.
    """
    from hyperzoo.nets.deepnets1m.network import skip_init, skip_init_active

    space = get_space(str(net_args["space"]))
    with torch.device(device) if device is not None else _null():
        if light and not skip_init_active():  # inside skip_init already (a sampler during generation): no re-entry
            with skip_init():
                return space.rebuild(net_args, num_classes)
        return space.rebuild(net_args, num_classes)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# ---------------------------------------------------------------------- ResNet family
_BLOCKS = ("basic", "bottleneck")


def resnet_net_args(
    block: str = "bottleneck",
    layers: tuple[int, ...] | list[int] = (3, 4, 6, 3),
    base: int = 64,
    groups: int = 1,
    width_per_group: int = 64,
    stem: str = "cifar",
) -> dict[str, Any]:
    """The ``net_args`` of one point of the ``resnet`` space (defaults: ResNet-50 on 32x32 inputs)."""
    if block not in _BLOCKS:
        raise ConfigError(f"resnet block must be one of {_BLOCKS}, got {block!r}")
    if stem not in ("cifar", "imagenet"):
        raise ConfigError(f"resnet stem must be 'cifar' (32x32) or 'imagenet' (224x224), got {stem!r}")
    if len(layers) != 4 or min(layers) < 1:
        raise ConfigError(f"resnet layers must be 4 positive block counts, got {list(layers)}")
    if block == "basic" and (groups != 1 or width_per_group != 64):
        raise ConfigError("basic blocks need groups=1 and width_per_group=64 (as torchvision's BasicBlock)")
    return {
        "space": "resnet",
        "block": block,
        "layers": [int(v) for v in layers],
        "base": int(base),
        "groups": int(groups),
        "width_per_group": int(width_per_group),
        "stem": stem,
    }


def _build_resnet(net_args: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    from hyperzoo.nets.adapt import adapt_to_cifar

    a = resnet_net_args(**{k: net_args[k] for k in ("block", "layers", "base", "groups", "width_per_group", "stem")})
    block: Any = BasicBlock if a["block"] == "basic" else Bottleneck
    net = ResNet(block, a["layers"], num_classes=num_classes, groups=a["groups"], width_per_group=a["width_per_group"])
    base = a["base"]
    if base != 64:  # torchvision fixes stage widths 64..512: rebuild stem, stages and head at base..8*base
        net.inplanes, net.dilation = base, 1
        net.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        net.bn1 = nn.BatchNorm2d(base)
        for i, n in enumerate(a["layers"]):
            setattr(net, f"layer{i + 1}", net._make_layer(block, base * 2**i, n, stride=1 if i == 0 else 2))
        net.fc = nn.Linear(base * 8 * block.expansion, num_classes)
    if a["stem"] == "cifar":
        adapt_to_cifar(net)
    return net


def _sample_resnet(rng: random.Random, stem: str = "cifar") -> tuple[nn.Module, dict[str, Any]]:
    block = rng.choice(_BLOCKS)
    layers = [rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 12), rng.randint(1, 4)]
    if rng.random() < 0.05:  # now and then a deep third stage, as ResNet-101/152
        layers[2] = rng.randint(13, 36)
    base = rng.choice([16, 32, 48, 64])
    groups, wpg = 1, 64
    if block == "bottleneck":
        groups, wpg = rng.choice([(1, 64), (1, 64), (1, 128), (32, 4), (32, 8), (1, 32)])
    args = resnet_net_args(block, layers, base, groups, wpg, stem)
    return _build_resnet(args), args


RESNET_HOLDOUT = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), 1, 128),
}


def _resnet_space(name: str, stem: str) -> Space:
    holdout = {k: resnet_net_args(b, ls, 64, g, w, stem) for k, (b, ls, g, w) in RESNET_HOLDOUT.items()}
    return Space(name, lambda rng: _sample_resnet(rng, stem), _build_resnet, holdout, 32 if stem == "cifar" else 224)


# ---------------------------------------------------------------------- MobileNet family
MOBILENET_V2_SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                        [6, 320, 1, 1]]  # fmt: skip


def mobilenet_net_args(
    setting: list[list[int]] | None = None, width_mult: float = 1.0, stem: str = "cifar"
) -> dict[str, Any]:
    """The ``net_args`` of one point of the ``mobilenet`` space (defaults: MobileNetV2 on 32x32 inputs).

    ``setting`` is torchvision's ``inverted_residual_setting``: rows ``[expansion t, channels c, blocks n,
    stride s]``.
    """
    setting = [list(map(int, row)) for row in (setting or MOBILENET_V2_SETTING)]
    if not setting or any(len(r) != 4 or min(r) < 1 for r in setting):
        raise ConfigError(f"mobilenet setting must be rows [t, c, n, s] of positive ints, got {setting}")
    if stem not in ("cifar", "imagenet"):
        raise ConfigError(f"mobilenet stem must be 'cifar' or 'imagenet', got {stem!r}")
    return {"space": "mobilenet", "setting": setting, "width_mult": float(width_mult), "stem": stem}


def _build_mobilenet(net_args: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
    from torchvision.models import MobileNetV2

    from hyperzoo.nets.adapt import adapt_to_cifar

    a = mobilenet_net_args(net_args["setting"], net_args["width_mult"], net_args["stem"])
    net = MobileNetV2(num_classes=num_classes, width_mult=a["width_mult"], inverted_residual_setting=a["setting"])
    if a["stem"] == "cifar":
        adapt_to_cifar(net)
    return net


def _sample_mobilenet(rng: random.Random, stem: str = "cifar") -> tuple[nn.Module, dict[str, Any]]:
    rows, c = [], 8 * rng.randint(1, 3)
    rows.append([1, c, 1, 1])
    for _ in range(rng.randint(3, 6)):
        c = min(int(c * rng.choice([1.0, 1.5, 2.0]) + 7) // 8 * 8, 384)
        rows.append([rng.choice([1, 3, 4, 6]), c, rng.randint(1, 4), rng.choice([1, 2])])
    args = mobilenet_net_args(rows, rng.choice([0.5, 0.75, 1.0]), stem)
    return _build_mobilenet(args), args


def _mobilenet_space(name: str, stem: str) -> Space:
    holdout = {"mobilenet_v2": mobilenet_net_args(None, 1.0, stem)}
    return Space(
        name, lambda rng: _sample_mobilenet(rng, stem), _build_mobilenet, holdout, 32 if stem == "cifar" else 224
    )


SPACES.add("resnet", _resnet_space("resnet", "cifar"), family="builtin", summary="ResNet/ResNeXt/WRN, 32x32 stem")
SPACES.add("resnet_imagenet", _resnet_space("resnet_imagenet", "imagenet"), family="builtin",
           summary="ResNet/ResNeXt/WRN, 224x224 stem")  # fmt: skip
SPACES.add("mobilenet", _mobilenet_space("mobilenet", "cifar"), family="builtin", summary="MobileNetV2, 32x32")
SPACES.add("mobilenet_imagenet", _mobilenet_space("mobilenet_imagenet", "imagenet"), family="builtin",
           summary="MobileNetV2, 224x224")  # fmt: skip
