"""Models of the timm library by name: ``create_model("timm:resnet50")`` (install ``hyperzoo[timm]``).

Every timm model name is accepted after the ``timm:`` prefix; the model is always built **without pretrained
weights** (nothing downloads). ``num_classes`` goes to timm; other keyword arguments too.

``adapt_cifar=True`` means what it means for torchvision models (a 32x32 input, the stride of the stem reduced so
that the last feature map is not smaller than 1x1), done the generic way timm allows:

- models whose constructor takes ``img_size`` (ViTs, DeiT, Swin, CaiT, XCiT, BEiT, MLP-Mixer, ...) are built for
  ``img_size=32`` (positional embeddings and window sizes follow timm's own rules);
- the other models (CNNs) keep their architecture, and the stride of their first convolution
  (``pretrained_cfg["first_conv"]``) becomes 1 when it is 2, so a 32x32 image ends on a 2x2 map instead of 1x1.

Models that reject either (a fixed grid that 32 does not fit) raise :class:`~hyperzoo.errors.ConfigError` naming the
model; build them at their own size (``adapt_cifar=False``, ``expected_input_size`` is timm's input size).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from hyperzoo.errors import ConfigError, HyperzooError, UnknownNameError

__all__ = ["PREFIX", "create_timm_model", "is_timm_name", "timm_available"]

PREFIX = "timm:"


def is_timm_name(name: str) -> bool:
    """Whether ``name`` is a ``timm:`` model name (whether or not timm is installed)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def timm_available() -> bool:
    """Whether the optional timm package can be imported."""
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def _timm() -> Any:
    try:
        import timm
    except ImportError as e:
        raise HyperzooError(
            "timm: model names need the optional timm package: pip install 'hyperzoo[timm]'"
        ) from e
    return timm


def check_timm_name(name: str) -> str:
    """The timm name of ``"timm:<name>"``; raises :class:`UnknownNameError` (with close names) if timm lacks it."""
    timm = _timm()
    bare = name[len(PREFIX) :]
    if not timm.is_model(bare):
        import difflib

        close = difflib.get_close_matches(bare, timm.list_models(), n=5)
        hint = f"; did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown timm model {bare!r}{hint} (timm.list_models() lists them)")
    return bare


def _entrypoint_takes(bare: str, arg: str) -> bool:
    """Whether the model class behind a timm entrypoint takes ``arg`` (``img_size``) in its constructor."""
    timm = _timm()
    fn = timm.models.model_entrypoint(bare)
    module = inspect.getmodule(fn)
    for obj in vars(module).values() if module is not None else ():
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__:
            try:
                params = inspect.signature(obj.__init__).parameters
            except (TypeError, ValueError):
                continue
            if arg in params and "num_classes" in params:
                return True
    return False


def _unstride_first_conv(net: nn.Module, first_conv: str | None) -> bool:
    if not first_conv:
        return False
    modules = dict(net.named_modules())
    conv = modules.get(first_conv) or modules.get(first_conv.rpartition(".")[0])
    if isinstance(conv, nn.Conv2d) and max(conv.stride) == 2:
        conv.stride = (1, 1)
        return True
    return False


def create_timm_model(name: str, num_classes: int | None = None, adapt_cifar: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``"timm:<name>"`` without pretrained weights.

    Args:
        name: ``"timm:"`` followed by a timm model name.
        num_classes: classifier outputs (timm's default when ``None``).
        adapt_cifar: adapt to 32x32 inputs (module docstring).
        **kwargs: more arguments for ``timm.create_model``.

    Returns:
        The model, with ``expected_input_size`` set (32 when adapted, else timm's input size).

    Raises:
        UnknownNameError: timm has no such model.
        ConfigError: ``pretrained=True`` was asked for, or the model cannot be adapted to 32x32.
        HyperzooError: timm is not installed.
    """
    timm = _timm()
    bare = check_timm_name(name)
    if kwargs.pop("pretrained", False):
        raise ConfigError(f"{name}: hyperzoo builds timm models without pretrained weights (no downloads)")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if adapt_cifar and "img_size" not in kwargs and _entrypoint_takes(bare, "img_size"):
        kwargs["img_size"] = 32
    try:
        net = timm.create_model(bare, pretrained=False, **kwargs)
    except Exception as e:
        what = "adapted to 32x32 inputs" if adapt_cifar else f"with {kwargs}"
        raise ConfigError(f"{name}: timm cannot build it {what}: {type(e).__name__}: {e}") from e
    cfg = getattr(net, "pretrained_cfg", None) or {}
    if adapt_cifar:
        if "img_size" not in kwargs:
            _unstride_first_conv(net, cfg.get("first_conv"))
        net.expected_input_size = 32
    else:
        size = cfg.get("input_size") or (3, 224, 224)
        net.expected_input_size = tuple(int(s) for s in size[1:]) if len(size) == 3 else 224
    return net
