"""Build networks with their parameters on the ``meta`` device: shapes without memory.

A computation graph and a GHN's prediction depend only on parameter shapes, so the largest torchvision classifiers
(RegNetY-128GF: 644 M parameters) can be traced and predicted with a few GB instead of their full size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["parameters_on_meta"]


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Inside this context, every parameter a module registers is moved to the ``meta`` device.

    Not thread-safe: it swaps ``nn.Module.register_parameter`` for the duration.
    """
    register = nn.Module.register_parameter

    def on_meta(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        register(self, name, param)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]
