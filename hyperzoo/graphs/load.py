"""The graph of a registered model name or of an ``.onnx`` file (what ``hyperzoo graphs info|draw MODEL`` shows).

This module imports nothing heavy at its top (the command modules import it while building the parser); torch,
the models and the ONNX reader load when :func:`load_graph` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hyperzoo.errors import ConfigError, DataError

if TYPE_CHECKING:
    from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = ["load_graph"]


def load_graph(
    spec: str,
    input_size: int | None = None,
    adapt_cifar: bool = False,
    num_classes: int | None = None,
    s_max: int = 50,
    strict: bool = True,
) -> ArchGraph:
    """The graph of a registered model name or of an ``.onnx`` file.

    ``strict=False`` lists parameters without a role in ``graph.unmapped`` instead of raising (``graphs info``
    shows them).

    Raises:
        UnknownNameError: ``spec`` is neither a registered model nor an ``.onnx`` file.
        DataError: the ``.onnx`` file does not exist.
        ConfigError: a bad input size.
    """
    if input_size is not None and input_size <= 0:
        raise ConfigError(f"input_size={input_size}: must be a positive image side")
    if spec.lower().endswith(".onnx"):
        path = Path(spec)
        if not path.is_file():
            raise DataError(f"ONNX file {spec} not found; give the path of an existing .onnx file")
        from hyperzoo.graphs.onnx import graph_from_onnx  # lazy: needs the optional onnx package

        graph = graph_from_onnx(str(path))
        return graph if s_max >= int(getattr(graph, "s_max", s_max) or s_max) else graph.with_s_max(s_max)

    from hyperzoo.graphs.from_module import graph_from_module
    from hyperzoo.nets import create_model

    kwargs: dict[str, object] = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if adapt_cifar:
        from hyperzoo.nets.factory import model_family

        if model_family(spec) in ("torchvision", "timm"):
            kwargs["adapt_cifar"] = True  # hyperzoo's CIFAR models are 32x32 networks already
    model = create_model(spec, **kwargs)
    return graph_from_module(model, input_size=input_size, s_max=s_max, name=spec, strict=strict)
