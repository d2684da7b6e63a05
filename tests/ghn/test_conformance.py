"""GHN-2 loads the reference checkpoint and predicts what the reference ppuda predicts (``shared/conformance``).

``ppuda_ghn2_seed0.json`` and ``ppuda_ghn2_seed0_more.json`` (35 further torchvision classifiers, every one the
reference handles fully; the lists are in ``tests/graphs/test_conformance.py``) hold fingerprints of every predicted
tensor. The networks of the second file are built with their parameters on the ``meta`` device: prediction reads
only shapes and module types, and RegNetY-128GF (644 M parameters) would not fit twice in memory otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import torch

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.ghn import GHN2, load_reference_checkpoint  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402
from tests.paths import SHARED  # noqa: E402

CHECKPOINT = SHARED / "conformance" / "ghn2_cifar10_seed0.pt"
FINGERPRINTS = SHARED / "conformance" / "ppuda_ghn2_seed0.json"
MORE = SHARED / "conformance" / "ppuda_ghn2_seed0_more.json"
RTOL = 1e-4

pytestmark = pytest.mark.conformance


@lru_cache(maxsize=1)
def fingerprints() -> dict:
    return json.loads(FINGERPRINTS.read_text())


@lru_cache(maxsize=1)
def more_fingerprints() -> dict:
    return json.loads(MORE.read_text())


@lru_cache(maxsize=1)
def ghn() -> GHN2:
    return load_reference_checkpoint(CHECKPOINT)


def build(name: str) -> tuple[torch.nn.Module, object]:
    """The network and its graph, made as ``tests/graphs/test_conformance.py`` makes them."""
    if name == "darts":
        from hyperzoo.nets import deepnets1m

        model = deepnets1m.Network(C=16, num_classes=10, genotype=deepnets1m.DARTS, n_cells=8, is_imagenet_input=False)
        return model, graph_from_module(model, input_size=32)
    model = create_model(name, num_classes=10, adapt_cifar=True)
    return model, graph_from_module(model)


def relative_errors(pred: torch.Tensor, fp: dict) -> dict[str, float]:
    """Errors of ``pred`` against one fingerprint, relative to the value's magnitude or the tensor's scale.

    Sums and single values can be near zero, so their errors are taken relative to ``|value| + scale`` where the scale
    is the norm (for the sum) or the root mean square (for a value).
    """
    v = pred.detach().double().flatten()
    norm, rms = fp["norm"], fp["norm"] / math.sqrt(max(v.numel(), 1))
    got = v[fp["idx"]].tolist()
    return {
        "norm": abs(v.norm().item() - norm) / max(norm, 1e-30),
        "sum": abs(v.sum().item() - fp["sum"]) / max(abs(fp["sum"]) + norm, 1e-30),
        "vals": max((abs(a - b) / max(abs(b) + rms, 1e-30) for a, b in zip(got, fp["vals"])), default=0.0),
    }


def test_checkpoint_loads_with_weights_only():
    ckpt = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(ckpt) >= {"state_dict", "config", "epoch"}
    model = ghn()
    assert not model.training
    assert model.max_shape == tuple(ckpt["config"]["max_shape"])
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(t.numel() for t in ckpt["state_dict"].values()) == 1_620_764  # ghn.md C.4


SLOW = pytest.mark.slow  # the two largest graphs: run with -m slow


def check_predictions(pred: dict[str, torch.Tensor], ref: dict) -> None:
    assert sorted(pred) == sorted(ref)
    worst = {"norm": 0.0, "sum": 0.0, "vals": 0.0}
    bad = []
    for key, fp in ref.items():
        assert list(pred[key].shape) == fp["shape"], key
        err = relative_errors(pred[key], fp)
        worst = {k: max(worst[k], err[k]) for k in worst}
        if max(err.values()) > RTOL:
            bad.append((key, err))
    assert not bad, f"{len(bad)} of {len(ref)} tensors differ from the reference, e.g. {bad[:3]} (worst {worst})"


def _graph_conformance_module() -> Any:
    """``tests/graphs/test_conformance.py`` (its model lists), loaded under its own name."""
    path = Path(__file__).resolve().parents[1] / "graphs" / "test_conformance.py"
    spec = importlib.util.spec_from_file_location("_hyperzoo_graph_conformance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_GRAPHS = _graph_conformance_module()
MORE_MODELS, parameters_on_meta = _GRAPHS.MORE_MODELS, _GRAPHS.parameters_on_meta


@pytest.mark.parametrize("name", MORE_MODELS)
def test_more_predictions_match_reference(name):
    ref = more_fingerprints()["models"][name]
    with parameters_on_meta():
        model = create_model(name, num_classes=10, adapt_cifar=True).eval()
    graph = graph_from_module(model)
    with torch.no_grad():
        pred = ghn().predict_parameters(graph, model)
    assert len(ref["params"]) == len(dict(model.named_parameters()))  # the reference predicted every tensor
    check_predictions(pred, ref["params"])


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        pytest.param("resnet50", marks=SLOW),
        "mobilenet_v2",
        pytest.param("densenet121", marks=SLOW),
        "vgg11_bn",
        "squeezenet1_1",
        "darts",
    ],
)
def test_predictions_match_reference(name):
    ref = fingerprints()["models"][name]["params"]
    model, graph = build(name)
    with torch.no_grad():
        pred = ghn().predict_parameters(graph, model)
    check_predictions(pred, ref)
