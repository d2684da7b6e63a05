"""Typed results of GHN evaluation and prediction: frozen dataclasses that cross module boundaries.

:func:`hyperzoo.ghn.evaluate.evaluate_predicted` returns one :class:`ArchResult` per architecture and
:func:`~hyperzoo.ghn.evaluate.summarize` an :class:`EvalSummary`; :func:`hyperzoo.ghn.predict.predict_to_file`
returns a :class:`ModulePrediction` and :func:`hyperzoo.ghn.onnx_predict.predict_onnx` an :class:`OnnxPrediction`.
Each has ``to_json()``: the flat dict with the keys the JSON files (``hyperzoo eval-ghn --json``) always had, so
files written before stay readable. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArchResult", "EvalSummary", "ModulePrediction", "OnnxPrediction", "PredictionReport"]


@dataclass(frozen=True)
class ArchResult:
    """One architecture evaluated with predicted parameters (no training).

    Attributes:
        name: the architecture's name.
        params: its parameter count; ``tensors``: its parameter tensors.
        predicted_params: parameters the GHN predicted; ``predicted_tensors``: tensors it predicted.
        unpredicted: names of parameters left at their initial values (only with ``skip_unknown``).
        graph_s: seconds to trace its graph (0 for a stored graph); ``predict_s``: seconds of the GHN pass.
        top1: top-1 accuracy in [0, 1]; ``top5``: top-5 (top-k with k = classes when fewer than 5).
        eval_s: seconds of the test pass; ``num_images``: test images.
        baseline_top1: top-1 of the random initialisation (None unless asked for); ``baseline_top5`` likewise.
        info: facts of the architecture (``model``, or store ``index`` and ``net_args``), flattened into the JSON.
    """

    name: str
    params: int
    tensors: int
    predicted_params: int
    predicted_tensors: int
    unpredicted: tuple[str, ...]
    graph_s: float
    predict_s: float
    top1: float
    top5: float
    eval_s: float
    num_images: int
    baseline_top1: float | None = None
    baseline_top5: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_baseline(self) -> bool:
        """Whether the random-init baseline was measured."""
        return self.baseline_top1 is not None and self.baseline_top5 is not None

    def to_json(self) -> dict[str, Any]:
        """The flat JSON row: ``name``, ``baseline_top1/5`` when measured, the counts and times, then ``info``."""
        row: dict[str, Any] = {"name": self.name}
        if self.has_baseline:
            row.update(baseline_top1=self.baseline_top1, baseline_top5=self.baseline_top5)
        for f in dataclasses.fields(self):
            if f.name not in ("name", "baseline_top1", "baseline_top5", "info"):
                row[f.name] = getattr(self, f.name)
        row["unpredicted"] = list(self.unpredicted)
        row.update(self.info)
        return row


@dataclass(frozen=True)
class EvalSummary:
    """Mean and population standard deviation over evaluated architectures.

    The ``*_baseline_*`` fields are None unless every result has a random-init baseline.
    """

    num_archs: int
    mean_top1: float
    std_top1: float
    mean_top5: float
    std_top5: float
    mean_predict_s: float
    mean_params: float
    mean_baseline_top1: float | None = None
    std_baseline_top1: float | None = None
    mean_baseline_top5: float | None = None
    std_baseline_top5: float | None = None

    @property
    def has_baseline(self) -> bool:
        """Whether the random-init baseline is summarized."""
        return self.mean_baseline_top1 is not None

    def to_json(self) -> dict[str, Any]:
        """The summary's keys as in the JSON files (baseline keys only when measured)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class PredictionReport:
    """What one prediction of a network's parameters did.

    Attributes:
        tensors: parameter tensors of the network; ``params``: their total size.
        predicted_tensors: tensors the GHN predicted; ``predicted_params``: their total size.
        unpredicted: names of parameters left at their initial values (only with ``skip_unknown``).
        graph_s: seconds to build the graph; ``predict_s``: seconds of the GHN pass.
    """

    tensors: int
    params: int
    predicted_tensors: int
    predicted_params: int
    unpredicted: tuple[str, ...]
    graph_s: float
    predict_s: float

    def to_json(self) -> dict[str, Any]:
        """The report's numbers and names as a JSON-ready dict."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if _is_plain(f.name)}


@dataclass(frozen=True)
class ModulePrediction(PredictionReport):
    """A registered model's predicted state dict, written as safetensors.

    Attributes:
        has_bn: the network has batch norms, whose running statistics were written as defaults (not predicted).
    """

    has_bn: bool = False


@dataclass(frozen=True)
class OnnxPrediction(PredictionReport):
    """An ONNX model with predicted initializers.

    Attributes:
        model: the ``onnx.ModelProto`` with the predicted initializers (``to_json`` leaves it out).
        values: every initializer written, ``{name: tensor}`` (``to_json`` leaves them out).
        reset_buffers: batch-norm running statistics written as defaults (mean 0, variance 1).
    """

    model: Any = None
    values: Mapping[str, Any] = field(default_factory=dict)
    reset_buffers: tuple[str, ...] = ()


_NOT_JSON = ("model", "values")


def _is_plain(name: str) -> bool:
    return name not in _NOT_JSON


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
