"""Every torchvision classification model in the registry, by its torchvision name.

``create_model("resnet50", num_classes=10, adapt_cifar=True)`` builds ``torchvision.models.resnet50`` with 10
classes and adapts it to 32x32 inputs (:mod:`hyperzoo.nets.adapt`). Pretrained weights never download here:
``weights_path`` takes a local ``.safetensors`` or ``.pth`` state dict (loaded with ``weights_only=True``);
a classifier whose shape differs from ``num_classes`` is left at its initialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.nets.adapt import adapt_to_cifar, build_maxvit_t_cifar
from hyperzoo.nets.factory import register_model

__all__ = ["TORCHVISION_MODELS", "load_state_dict_file"]

TORCHVISION_MODELS: list[str] = tvm.list_models(module=tvm)

# Builders whose defaults do not suit a GHN or 32x32 inputs: auxiliary heads return tuples in training mode and
# need large inputs; googlenet/inception with init_weights=None warn on every build.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Loads a state dict from a local ``.safetensors`` or ``.pt``/``.pth`` file without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights file {path} does not exist; pass the path of a local .safetensors or .pth file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or truncated files raise many different errors
        raise DataError(f"cannot read weights file {path}: {type(e).__name__}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


def _load_weights(net: nn.Module, path: str | Path) -> None:
    state = load_state_dict_file(path)
    own = net.state_dict()
    # a classifier trained for another label space is skipped rather than failing the whole load
    state = {k: v for k, v in state.items() if not (k in own and own[k].shape != v.shape)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or len(missing) > 4:
        raise ConfigError(
            f"weights in {path} do not fit {type(net).__name__}: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


def _make_entry(name: str) -> Callable[..., nn.Module]:
    builder = tvm.get_model_builder(name)

    def entry(
        num_classes: int = 1000, adapt_cifar: bool = False, weights_path: str | None = None, **kwargs: Any
    ) -> nn.Module:
        kwargs = {**_DEFAULTS.get(name, {}), **kwargs}
        if adapt_cifar and name == "maxvit_t":
            net = build_maxvit_t_cifar(num_classes=num_classes, **kwargs)
            net.expected_input_size = 32
        else:
            net = builder(weights=None, num_classes=num_classes, **kwargs)
            net.expected_input_size = 224
        if weights_path is not None:
            _load_weights(net, weights_path)  # ImageNet-shaped weights load before the 32x32 surgery
        if adapt_cifar:
            adapt_to_cifar(net)
        return net

    entry.__name__ = name
    entry.__doc__ = (
        f"torchvision ``{name}`` (no download). Args: num_classes; adapt_cifar: adapt to 32x32 inputs; "
        "weights_path: local state-dict file; other kwargs go to the torchvision builder."
    )
    return entry


for _name in TORCHVISION_MODELS:
    register_model(_name, family="torchvision")(_make_entry(_name))
