"""The model registry: ``create_model(name, **overrides)`` and ``list_models(pattern)``.

Every target network a user names by string lives here: hyperzoo's CIFAR ResNets and Wide ResNets, and every
torchvision classification model (optionally adapted to 32x32 inputs with ``adapt_cifar=True``).

:data:`MODEL_SOURCES` is the one place that says which modules register model names: the registry imports them
on its first lookup. ``hyperzoo.layers`` builds on ``hyperzoo.nets`` (its LAuReL, GCR and MixtureGrowth variants
wrap these networks), so ``hyperzoo.nets`` names it here instead of importing it: no import cycle, and every name
is listed whichever package was imported first. A new family adds its module to this tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from hyperzoo.errors import UnknownNameError
from hyperzoo.nets.timm_models import check_timm_name, create_timm_model, is_timm_name, timm_available
from hyperzoo.registry import Registry

__all__ = ["MODELS", "MODEL_SOURCES", "create_model", "is_model", "list_models", "model_family", "register_model"]

#: every module that registers model names (with :func:`register_model`), imported on the first registry lookup
MODEL_SOURCES: tuple[str, ...] = (
    "hyperzoo.nets.cifar_resnet",
    "hyperzoo.nets.wide_resnet",
    "hyperzoo.nets.torchvision_models",
    "hyperzoo.nets.deepnets1m.models",
    "hyperzoo.layers.laurel",
    "hyperzoo.layers.grassmann",
    "hyperzoo.layers.mixture_growth",
)

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", list_hint="run `hyperzoo models` or hyperzoo.list_models() to see them all", sources=MODEL_SOURCES
)


def register_model(
    name: str | None = None, family: str = "", **meta: Any
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model entrypoint ``fn(**kwargs) -> nn.Module``."""
    return MODELS.register(name, family=family, **meta)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Builds the registered model ``name``.

    Overrides whose value is ``None`` are dropped, so command-line defaults never replace a model's own
    defaults (the timm convention).

    Args:
        name: a registered name, e.g. ``"resnet20"``, ``"wrn28_10"``, ``"resnet50"``, or a timm model name after
            ``timm:`` (``"timm:resnet50"``, needs ``hyperzoo[timm]``; built without pretrained weights, see
            :mod:`hyperzoo.nets.timm_models`).
        **overrides: keyword arguments for the entrypoint, e.g. ``num_classes=10`` or, for torchvision models,
            ``adapt_cifar=True``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the closest names.
    """
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if is_timm_name(name):
        return create_timm_model(name, **kwargs)
    fn = MODELS.get(name)
    return fn(**kwargs)


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Sorted registered model names matching a shell-style ``pattern`` (and ``family`` if given)."""
    return MODELS.names(pattern, family=family)


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model (or a ``timm:`` name timm knows)."""
    if is_timm_name(name):
        return timm_available() and _timm_known(name)
    return name in MODELS


def model_family(name: str) -> str:
    """The family a registered model belongs to (``"cifar_resnet"``, ``"wide_resnet"``, ``"torchvision"``, ``"timm"``).

    Raises:
        UnknownNameError: no such model (a ``timm:`` name timm lacks included).
    """
    if is_timm_name(name):
        check_timm_name(name)
        return "timm"
    return MODELS.entry(name).family


def _timm_known(name: str) -> bool:
    try:
        check_timm_name(name)
    except UnknownNameError:
        return False
    return True
