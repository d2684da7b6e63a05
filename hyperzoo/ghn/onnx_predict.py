"""Predicting the parameters of an ONNX model with a GHN and writing them into the file as initializers.

The ONNX graph code (:mod:`hyperzoo.graphs.onnx`) turns an ONNX model into the graph of the module it was exported
from; prediction needs a GHN, so it lives here in :mod:`hyperzoo.ghn`, which may import :mod:`hyperzoo.graphs`
(never the reverse). It uses only the public functions of :mod:`hyperzoo.graphs.onnx` (``graph_from_onnx``,
``onnx_parameter_names``, ``write_onnx_initializers``). ``hyperzoo predict --onnx`` is the command around
:func:`predict_onnx`. Needs the optional ``onnx`` package (``pip install 'hyperzoo[onnx]'``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from hyperzoo.errors import ConfigError, DataError, HyperzooError
from hyperzoo.ghn.predict import timed_predict
from hyperzoo.ghn.results import OnnxPrediction

if TYPE_CHECKING:
    import onnx

    from hyperzoo.ghn.ghn import GHN
    from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = ["load_onnx", "onnx_weight_shapes", "predict_onnx", "shim_module"]

#: values written for batch-norm running statistics, which the GHN does not predict
BUFFER_DEFAULTS = {"running_mean": 0.0, "running_var": 1.0}


def load_onnx(src: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """``src`` itself when it is a ``ModelProto``, else the ONNX model read from that file.

    Raises:
        HyperzooError: the ``onnx`` package is not installed.
        DataError: no such file, or not an ONNX model.
    """
    if not isinstance(src, (str, Path)):
        return src
    try:
        import onnx
    except ImportError as exc:
        raise HyperzooError("predicting ONNX models needs the onnx package: pip install 'hyperzoo[onnx]'") from exc
    path = Path(src)
    if not path.is_file():
        raise DataError(f"ONNX file {path} not found; give the path of an existing .onnx model")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others from protobuf
        raise DataError(f"cannot read {path} as an ONNX model: {type(exc).__name__}: {exc}") from exc


def onnx_weight_shapes(proto: onnx.ModelProto) -> tuple[dict[str, tuple[int, ...] | None], set[str]]:
    """Shapes of the weights of an ONNX model (``onnx_parameter_names``), and those that have no initializer.

    A weight's shape comes from its initializer or, for a stripped model, from its graph input's declared type
    (``None`` when that is not fully static).
    """
    from hyperzoo.graphs.onnx import onnx_parameter_names, static_dims

    inits = {i.name: tuple(int(d) for d in i.dims) for i in proto.graph.initializer}
    inputs = {i.name: i for i in proto.graph.input}
    shapes: dict[str, tuple[int, ...] | None] = {}
    missing: set[str] = set()
    for name in onnx_parameter_names(proto):
        if name in inits:
            shapes[name] = inits[name]
        else:
            shapes[name] = static_dims(inputs[name]) if name in inputs else None
            missing.add(name)
    return shapes, missing


class _NormPlaceholder(nn.LayerNorm):
    """A normalization module with no parameters of its own (:func:`shim_module` registers them)."""

    def __init__(self) -> None:
        nn.Module.__init__(self)


def shim_module(shapes: Mapping[str, tuple[int, ...]], norm_modules: set[str]) -> nn.Module:
    """An ``nn.Module`` whose ``named_parameters()`` have the given names and shapes (on the meta device).

    :meth:`GHN.predict_batch` reads only parameter shapes and, to give a norm node's bias with its weight, whether
    the module of a norm weight is a normalization layer: the modules named in ``norm_modules`` are therefore
    (empty) :class:`torch.nn.LayerNorm` instances; the rest are plain modules.
    """
    root = nn.Module()
    for name, shape in shapes.items():
        *path, leaf = name.split(".")
        module = root
        for i, part in enumerate(path):
            child = module._modules.get(part)
            if child is None:
                child = _NormPlaceholder() if ".".join(path[: i + 1]) in norm_modules else nn.Module()
                module.add_module(part, child)
            module = child
        module.register_parameter(leaf, nn.Parameter(torch.empty(shape, device="meta"), requires_grad=False))
    return root


def _param_shapes(shapes: Mapping[str, tuple[int, ...] | None], buffers: set[str]) -> dict[str, tuple[int, ...]]:
    """The shapes of the weights to predict (not the buffers); every weight must declare a static shape."""
    undeclared = sorted(n for n, s in shapes.items() if s is None)
    if undeclared:
        raise DataError(
            f"the ONNX model declares no static shape for weights {undeclared[:6]}; re-export it with its "
            "initializers or with static input shapes"
        )
    return {n: s for n, s in shapes.items() if n not in buffers and s is not None}


def _check_classifier(graph: ArchGraph, param_shapes: Mapping[str, tuple[int, ...]], num_classes: int) -> None:
    """Refuses a model whose classifier (the weight of the last parameter node) has another number of outputs."""
    names = list(graph.param_names)
    n = int(graph.num_nodes)
    if n < 2 or names[n - 2] not in param_shapes or len(param_shapes[names[n - 2]]) < 2:
        return
    classes = param_shapes[names[n - 2]][0]
    if classes != num_classes:
        raise ConfigError(
            f"the ONNX model's classifier ({names[n - 2]}) has {classes} outputs but the GHN predicts "
            f"classifiers for {num_classes} classes; export the model with num_classes={num_classes} "
            f"or use a GHN trained on a {classes}-class dataset"
        )


def _check_covered(unpredicted: list[str], missing: set[str]) -> None:
    """Refuses weights that are neither predicted nor present in the file."""
    lacking = sorted(set(unpredicted) & missing)
    if lacking:
        raise DataError(
            f"{len(lacking)} weight(s) were not predicted (ops the GHN cannot embed, or parameters without a graph "
            f"node) and the ONNX file has no values for them: {lacking[:6]}; export the model with its initializers "
            "so that these keep their values"
        )


def predict_onnx(
    ghn: GHN, src: str | Path | onnx.ModelProto, out: str | Path | None = None, skip_unknown: bool = False
) -> OnnxPrediction:
    """Predicts the parameters of an ONNX model with ``ghn`` and writes them into it as initializers.

    The graph comes from :func:`~hyperzoo.graphs.onnx.graph_from_onnx` (the graph of the module the file was
    exported from), parameter shapes from the file's initializers or, for a stripped model, its graph inputs. Batch
    norm running statistics are written as defaults (mean 0, variance 1): they belong to other weights, and the
    GHN does not predict them.

    Args:
        ghn: the GHN.
        src: an ``.onnx`` file or ``onnx.ModelProto`` (with or without initializers).
        out: where to save the model with predicted initializers (optional).
        skip_unknown: see :meth:`GHN.predict_batch`; unpredicted weights keep the values the file has.

    Returns:
        The model with its predicted initializers (``.model``), the values written (``.values``) and the counts.

    Raises:
        DataError: a parameter whose shape the file does not declare, or weights that are neither predicted nor
            present in the file.
        ConfigError: the model's classifier has another number of classes than the GHN predicts.
    """
    from hyperzoo.graphs.onnx import graph_from_onnx, write_onnx_initializers

    proto = load_onnx(src)
    t0 = time.perf_counter()
    graph = graph_from_onnx(proto, s_max=ghn.s_max, name=Path(src).stem if isinstance(src, (str, Path)) else None)
    graph_s = time.perf_counter() - t0
    shapes, missing = onnx_weight_shapes(proto)
    buffers = {n for n in shapes if n.rpartition(".")[2] in BUFFER_DEFAULTS}
    param_shapes = _param_shapes(shapes, buffers)
    _check_classifier(graph, param_shapes, ghn.num_classes)
    norm_modules = {
        graph.param_names[v].rpartition(".")[0] for v, op in enumerate(graph.op_names) if op in ("bn", "ln")
    }
    pred, predict_s = timed_predict(ghn, shim_module(param_shapes, norm_modules), graph, skip_unknown)
    pred = {k: v.detach().cpu() for k, v in pred.items()}
    unpredicted = sorted(set(param_shapes) - set(pred))
    _check_covered(unpredicted, missing)
    values: dict[str, torch.Tensor] = {
        b: torch.full(shapes[b] or (), BUFFER_DEFAULTS[b.rpartition(".")[2]]) for b in sorted(buffers)
    }
    values.update(pred)
    return OnnxPrediction(
        tensors=len(param_shapes),
        params=sum(math.prod(s) for s in param_shapes.values()),
        predicted_tensors=len(pred),
        predicted_params=sum(t.numel() for t in pred.values()),
        unpredicted=tuple(unpredicted),
        graph_s=graph_s,
        predict_s=predict_s,
        model=write_onnx_initializers(proto, values, out=out),
        values=values,
        reset_buffers=tuple(sorted(buffers)),
    )
