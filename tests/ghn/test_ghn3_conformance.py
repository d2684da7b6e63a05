"""A reference GHN-3 checkpoint loads (both formats), builds the reference GHN-3's graphs and predicts what it predicts.

Data: ``shared/conformance/ghn3`` (a random-weight GHN-3-T in the published ``ghn3tm8`` configuration and the
reference's graphs, parameter fingerprints and logits for six torchvision ImageNet models).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from functools import lru_cache
from pathlib import Path

import pytest
import torch
import torchvision

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.errors import HyperzooError  # noqa: E402
from hyperzoo.ghn import GHN, from_pretrained, load_ghn, save_ghn  # noqa: E402
from hyperzoo.ghn.ghn import set_bn_batch_stats  # noqa: E402
from hyperzoo.ghn.reference_ghn3 import infer_ghn3_config, load_reference_ghn3  # noqa: E402
from hyperzoo.graphs.ghn3_rules import reference_shape_4d  # noqa: E402
from tests.paths import CONFORMANCE  # noqa: E402

SHARED = CONFORMANCE / "ghn3"
JOBLIB = SHARED / "ghn3tm8_seed0.pt"
TORCH = SHARED / "ghn3tm8_seed0_torch.pt"
FINGERPRINTS = SHARED / "ghn3t_seed0.json"
RTOL = 1e-4
MODELS = ["resnet50", "resnet18", "mobilenet_v2", "vit_b_16", "convnext_tiny", "efficientnet_b0"]

pytestmark = pytest.mark.conformance


def _ghn2_comparison():
    """``relative_errors`` of the GHN-2 conformance tests: the same comparison for GHN-3."""
    spec = importlib.util.spec_from_file_location("_ghn2_conformance", Path(__file__).with_name("test_conformance.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.relative_errors


relative_errors = _ghn2_comparison()


@lru_cache(maxsize=1)
def reference() -> dict:
    return json.loads(FINGERPRINTS.read_text())


@lru_cache(maxsize=1)
def ghn() -> GHN:
    return from_pretrained(JOBLIB)  # the published format, configuration inferred


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, name)().eval()


@lru_cache(maxsize=1)
def cached(name: str) -> torch.nn.Module:
    """One instance per model for the tests that read only its structure (building ViT-B/16 takes seconds)."""
    return build(name)


@lru_cache(maxsize=1)
def predict(name: str) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """As the reference data were made: ``torch.manual_seed(0)`` right before the prediction; with the warnings."""
    model = cached(name)
    graph = ghn().graph(model)
    torch.manual_seed(0)
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the reference leaves class tokens and layer scales at their init: hyperzoo does so only when asked
        pred = ghn().predict_batch([model], [graph], allow_unpredicted=True)[0]
    return pred, tuple(str(w.message) for w in caught)


def test_both_formats_load_the_same_ghn():
    a, b = load_reference_ghn3(JOBLIB), load_reference_ghn3(TORCH)
    assert a.config == b.config
    assert a.config["graph_rules"] == "ghn3" and a.num_ops == 15 and a.hypernet == "graphormer"
    assert (a.hid, a.layers, a.heads, a.max_shape, a.num_classes) == (64, 3, 8, (64, 64, 16, 16), 1000)
    assert sum(p.numel() for p in a.parameters()) == 6_906_632
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not a.training


def test_config_inferred_as_the_reference_does():
    from hyperzoo.ghn.safe_pickle import load_pickled_state_dict

    state = load_pickled_state_dict(JOBLIB)
    inferred = infer_ghn3_config(state)
    saved = torch.load(TORCH, weights_only=True)["config"]
    for key in ("hid", "layers", "heads", "num_classes", "weight_norm", "ve", "layernorm", "is_ghn2"):
        assert inferred[key] == saved[key], key
    assert tuple(inferred["max_shape"]) == tuple(saved["max_shape"])


def test_loaders_dispatch_by_content_and_round_trip(tmp_path):
    assert load_ghn(TORCH).graph_rules == "ghn3"
    renamed = tmp_path / "weights.bin"  # no name or suffix convention is needed
    renamed.write_bytes(JOBLIB.read_bytes())
    assert from_pretrained(renamed).graph_rules == "ghn3"
    saved = save_ghn(ghn(), tmp_path / "ghn3t.safetensors")
    again = load_ghn(saved)
    assert again.config == ghn().config  # graph_rules travels with the config
    assert all(torch.equal(x, y) for x, y in zip(again.state_dict().values(), ghn().state_dict().values()))


@pytest.mark.parametrize("name", MODELS)
def test_graph_and_predictions_match_reference(name):
    ref = reference()["models"][name]
    graph = ghn().graph(cached(name))
    ours = graph.to_json_dict()
    assert ours["num_nodes"] == ref["num_nodes"]
    assert ours["nodes"] == ref["nodes"]
    assert ours["param_names"] == ref["param_names"]
    assert ours["edges"] == ref["edges"]  # real and virtual (s_max 50), with distances
    assert graph.shape.tolist() == [list(reference_shape_4d(s)) for s in ref["node_shapes"]]
    assert sorted(graph.unmapped) == sorted(ref["not_predicted"])  # reported, not silently dropped

    # the predicted parameters (same model instance: building ViT-B/16 takes seconds)
    pred, messages = predict(name)
    assert sorted(pred) == sorted(ref["params"])
    if ref["not_predicted"]:  # reported by name, as every unpredicted parameter is
        assert any("unpredicted" in m and ref["not_predicted"][0] in m for m in messages), messages
    assert sum(t.numel() for t in pred.values()) == ref["num_params_predicted"]
    bad = []
    for key, fp in ref["params"].items():
        assert list(pred[key].shape) == fp["shape"], key
        err = relative_errors(pred[key], fp)
        if max(err.values()) > RTOL:
            bad.append((key, err))
    assert not bad, f"{len(bad)} of {len(ref['params'])} tensors differ from the reference, e.g. {bad[:3]}"
    for key, fp in ref.get("extra_fingerprints", {}).items():
        assert key == "encoder.pos_embedding[:, 1:]"
        assert max(relative_errors(pred["encoder.pos_embedding"][:, 1:], fp).values()) <= RTOL


def test_unpredicted_tensors_are_reported():
    model = build("convnext_tiny")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.manual_seed(0)
    with pytest.raises(HyperzooError, match=r"18 parameter\(s\) without a node.*layer_scale.*reference GHN-3"):
        ghn()(model, bn_train=False)  # never silently: the caller must ask for the reference's behaviour
    with pytest.warns(UserWarning, match=r"18 parameter tensor\(s\) left unpredicted.*layer_scale"), torch.no_grad():
        ghn()(model, bn_train=False, allow_unpredicted=True)
    after = dict(model.named_parameters())
    kept = sorted(k for k in before if torch.equal(after[k], before[k]))
    assert kept == sorted(reference()["models"]["convnext_tiny"]["not_predicted"])  # left as the reference leaves them


def _logits_error(out: torch.Tensor, fp: dict) -> float:
    """Error of the logits relative to their norm (they reach ~1e6 with untouched running statistics)."""
    v = out.detach().double().flatten()
    scale = fp["norm"]
    worst = max(abs(a - b) for a, b in zip(v[fp["idx"]].tolist(), fp["vals"]))
    return max(abs(v.norm().item() - fp["norm"]) / scale, abs(v.sum().item() - fp["sum"]) / scale, worst / scale)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in ("vit_b_16", "resnet50") else n for n in MODELS],
)
def test_logits_match_reference(name):
    ref = reference()["models"][name]
    pred, _ = predict(name)
    model = build(name)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, tensor in pred.items():
            params[key].copy_(tensor)
        torch.manual_seed(0)
        x = torch.randn(1, 3, 224, 224)
        out = model(x)  # eval mode, running statistics untouched (0 / 1)
        assert _logits_error(out, ref["logits"]) < 1e-3
        assert int(out.argmax()) == ref["logits"]["top1"]
        out = set_bn_batch_stats(model)(x)
        assert _logits_error(out, ref["logits_bn_batch_stats"]) < 1e-3
        assert int(out.argmax()) == ref["logits_bn_batch_stats"]["top1"]


def test_predict_command_writes_the_reference_parameters(tmp_path, capsys):
    from safetensors.torch import load_file

    from hyperzoo.cli import main

    out = tmp_path / "resnet18.safetensors"
    assert main(["predict", "resnet18", "--ghn", str(JOBLIB), "--num-classes", "1000", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    state = load_file(str(out))
    ref = reference()["models"]["resnet18"]["params"]
    for key, fp in ref.items():
        assert max(relative_errors(state[key], fp).values()) <= RTOL, key


def test_graph_rules_follow_the_checkpoint():
    from hyperzoo.ghn import create_ghn, load_reference_checkpoint
    from hyperzoo.graphs import graph_from_module

    model = build("resnet18")
    assert create_ghn("ghn3_t").graph_rules == "hyperzoo"  # hyperzoo's own GHN-3 keeps its extended vocabulary
    assert create_ghn("ghn2").graph_rules == "ghn2"  # the reference vocabulary: the reference GHN-2's graphs
    ghn2_file = SHARED.parent / "ghn2_cifar10_seed0.pt"
    assert load_reference_checkpoint(ghn2_file).graph_rules == "ghn2"
    with pytest.raises(HyperzooError, match="graph rules"):
        ghn().predict_batch([model], [graph_from_module(model)])  # a GHN-2-rules graph for a GHN-3 checkpoint
    with pytest.raises(HyperzooError, match="graph rules"):
        GHN(graph_rules="ghn4")


def test_non_finite_ghn3_weights_are_refused(tmp_path):
    from hyperzoo.ghn.reference_ghn3 import load_reference_ghn3

    ckpt = torch.load(TORCH, map_location="cpu", weights_only=True)
    key = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][key] = torch.full_like(ckpt["state_dict"][key], float("nan"))
    bad = tmp_path / "nan_ghn3.pt"
    torch.save(ckpt, bad)
    with pytest.raises(HyperzooError, match=r"NaN|non-finite|infinite"):
        load_reference_ghn3(bad)
