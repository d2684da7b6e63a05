"""Predicting all parameters of a registered model with a GHN and saving its state dict as safetensors.

:func:`predict_to_file` is what ``hyperzoo predict MODEL`` runs; the timed GHN pass it shares with
:mod:`hyperzoo.ghn.onnx_predict` is :func:`hyperzoo.ghn.evaluate.timed_predict` (re-exported here). Errors name the
Python arguments (``num_classes=...``); the command translates them to its flags.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from hyperzoo.errors import ConfigError
from hyperzoo.ghn.evaluate import timed_predict
from hyperzoo.ghn.results import ModulePrediction

if TYPE_CHECKING:
    from hyperzoo.ghn.ghn import GHN

__all__ = ["BN_NOTE", "predict_to_file", "timed_predict"]

#: what the written batch-norm statistics are (also stored in the safetensors metadata)
BN_NOTE = (
    "running statistics of batch norms are not predicted: the written ones are the defaults (mean 0, variance 1); "
    "evaluate with batch statistics (hyperzoo.ghn.set_bn_batch_stats) or recalibrate them on training data"
)


def _check_sizes(ghn: GHN, num_classes: int | None, input_size: int | None) -> int:
    """The classifier outputs to build (the GHN's); refuses another number of classes or a bad image side."""
    classes = ghn.num_classes if num_classes is None else num_classes
    if classes != ghn.num_classes:
        raise ConfigError(
            f"num_classes={classes}: the GHN predicts classifiers for {ghn.num_classes} classes; "
            f"leave num_classes at its default, or use a GHN trained on a {classes}-class dataset"
        )
    if input_size is not None and input_size <= 0:
        raise ConfigError(f"input_size={input_size}: give a positive image side")
    return classes


def _save_state(model: nn.Module, out: Path, metadata: dict[str, str]) -> None:
    """``model``'s state dict as safetensors, written atomically."""
    from safetensors.torch import save_file

    from hyperzoo.io import atomic_write

    # clones: safetensors refuses tensors that share memory (tied weights)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    with atomic_write(out) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def predict_to_file(
    ghn: GHN,
    model_name: str,
    out: str | Path,
    num_classes: int | None = None,
    adapt_cifar: bool = False,
    input_size: int | None = None,
    skip_unknown: bool = False,
    ghn_source: str = "",
    stage: Callable[[str], None] | None = None,
) -> ModulePrediction:
    """Predicts every parameter of the registered model ``model_name`` and saves its state dict to ``out``.

    The file loads with ``create_model(model_name, ...).load_state_dict(safetensors.torch.load_file(out))``; batch
    norm running statistics are the defaults (:data:`BN_NOTE`). Its metadata records the model, the GHN and which
    parameters were not predicted.

    Args:
        ghn: the GHN.
        model_name: a registered model (``hyperzoo models``).
        out: the ``.safetensors`` file to write.
        num_classes: classifier outputs; None (default) and the only accepted value: the GHN's.
        adapt_cifar: adapt a torchvision/timm model to 32x32 inputs.
        input_size: image side for tracing the graph (default: the model's).
        skip_unknown: leave parameters the GHN cannot predict at their initial values instead of raising.
        ghn_source: how the GHN was named (checkpoint path or shipped name), for the metadata.
        stage: called with a line at each stage (building, tracing, predicting).

    Raises:
        UnknownNameError: ``model_name`` is not registered.
        ConfigError: another ``num_classes`` than the GHN's, or a bad ``input_size``.
    """
    from hyperzoo.ghn.evaluate import build_named_model, fill_predicted
    from hyperzoo.nets import model_family

    say = stage or (lambda _: None)
    family = model_family(model_name)  # unknown names fail here, with suggestions
    classes = _check_sizes(ghn, num_classes, input_size)
    adapt = bool(adapt_cifar) and family in ("torchvision", "timm")
    say(f"building {model_name}")  # large models take a while to build, trace and predict
    model = build_named_model(model_name, classes, adapt_cifar=adapt)
    say(f"tracing the graph of {model_name}")
    t0 = time.perf_counter()
    # the GHN's graph rules; a parameter without a node is an error unless skip_unknown
    graph = ghn.graph(model, input_size=input_size, name=model_name, allow_unpredicted=skip_unknown)
    graph_s = time.perf_counter() - t0
    model = model.to(ghn.op_embed.weight.device)
    say(f"predicting {sum(p.numel() for p in model.parameters()):,} parameters")
    pred, predict_s = timed_predict(ghn, model, graph, skip_unknown)
    fill_predicted(model, pred, bn_batch_stats=False)
    params = dict(model.named_parameters())
    unpredicted = sorted(set(params) - set(pred))
    metadata = {
        "format": "hyperzoo-predicted",
        "model": model_name,
        "ghn": str(ghn_source),
        "ghn_config": json.dumps(ghn.config),
        "adapt_cifar": json.dumps(adapt),
        "num_classes": str(classes),
        "input_size": json.dumps(list(getattr(graph, "input_size", None) or [])),
        "predicted": str(len(pred)),
        "unpredicted": json.dumps(unpredicted),
        "batch_norm": BN_NOTE,
    }
    _save_state(model, Path(out), metadata)
    return ModulePrediction(
        tensors=len(params),
        params=sum(p.numel() for p in params.values()),
        predicted_tensors=len(pred),
        predicted_params=sum(t.numel() for t in pred.values()),
        unpredicted=tuple(unpredicted),
        graph_s=graph_s,
        predict_s=predict_s,
        has_bn=any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()),
    )
