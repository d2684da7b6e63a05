"""No public path leaves a parameter at its initialisation unless the caller asked for it."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.cli import main  # noqa: E402
from hyperzoo.ghn import UnpredictableLayerError, create_ghn, save_ghn  # noqa: E402
from hyperzoo.ghn.unpredicted import UnpredictedParametersError, UnpredictedParametersWarning  # noqa: E402
from hyperzoo.graphs import PRIMITIVES, UnmappedModuleError, graph_from_module  # noqa: E402


class Odd(nn.Module):
    """A parameter no rule gives a role (sorted before use)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.table = nn.Parameter(torch.full((4, 1, 1), 7.0))
        self.fc = nn.Linear(4, 10)
        self.expected_input_size = 8

    def forward(self, x):
        x = self.conv(x) + torch.sort(self.table, dim=0)[0]
        return self.fc(x.mean((2, 3)))


class Scaled(nn.Module):
    """Layer scales, one of them a scalar: extension ops for a GHN with the reference's 15 ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.gamma_1 = nn.Parameter(torch.full((4, 1, 1), 0.5))
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.fc = nn.Linear(4, 10)
        self.expected_input_size = 8

    def forward(self, x):
        x = self.alpha * (self.gamma_1 * self.conv(x))
        return self.fc(x.mean((2, 3)))


def full_ghn():
    torch.manual_seed(0)
    return create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_ops=len(PRIMITIVES)).eval()


def test_ghn_refuses_a_model_with_a_parameter_without_role():
    ghn, model = full_ghn(), Odd()
    with pytest.raises(UnmappedModuleError, match="table"):
        ghn(model)
    with pytest.raises(UnmappedModuleError, match="table"):
        ghn.predict_parameters(model)
    graph = graph_from_module(model, strict=False)
    with pytest.raises(UnpredictedParametersError, match=r"1 parameter.*table.*allow_unpredicted=True"):
        ghn.predict_parameters(graph, model)
    with pytest.raises(UnpredictedParametersError, match="table"):
        ghn(model, graph)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    warns = pytest.warns(UnpredictedParametersWarning, match=r"1 parameter tensor\(s\) left unpredicted.*table")
    with warns, torch.no_grad():
        ghn(model, allow_unpredicted=True)
    assert torch.equal(model.table, before["table"])  # asked for: left as it was
    assert not torch.equal(model.conv.weight, before["conv.weight"])  # the rest is predicted


def test_reference_vocabulary_reports_extension_ops_as_unpredicted():
    torch.manual_seed(0)
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)).eval()  # 15 ops: no layer_scale
    model = Scaled()
    with pytest.raises(UnpredictableLayerError, match="gamma_1"):
        ghn(model)
    warns = pytest.warns(UnpredictedParametersWarning, match=r"2 parameter tensor\(s\).*alpha, gamma_1")
    with warns, torch.no_grad():
        pred = ghn.predict_parameters(model, allow_unpredicted=True)
    assert set(pred) == {"conv.weight", "conv.bias", "fc.weight", "fc.bias"}


def test_scalar_and_layer_scale_parameters_are_predicted():
    ghn, model = full_ghn(), Scaled()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpredictedParametersWarning)
        with torch.no_grad():
            pred = ghn.predict_parameters(model)
            ghn(model)
    assert pred["alpha"].shape == () and pred["gamma_1"].shape == (4, 1, 1)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert bool(torch.isfinite(model(torch.randn(2, 3, 8, 8))).all())


@pytest.fixture(scope="module")
def ref_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_ghn(
        create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)), tmp_path_factory.mktemp("g") / "t.safetensors"
    )


def test_predict_and_eval_report_unpredicted_parameters(ref_ckpt, tmp_path, capsys):
    pytest.importorskip("timm")
    out = tmp_path / "vit.safetensors"
    argv = ["predict", "timm:test_vit", "--ghn", str(ref_ckpt), "--out", str(out), "--adapt-cifar"]
    assert main(argv) == 2
    assert "--skip-unknown" in capsys.readouterr().err
    with pytest.warns(UnpredictedParametersWarning):
        assert main([*argv, "--skip-unknown"]) == 0
    text = capsys.readouterr().out
    assert "not predicted" in text and "cls_token" in text
    js = tmp_path / "eval.json"
    argv = ["eval-ghn", "--ghn", str(ref_ckpt), "--models", "timm:test_vit", "--limit-images", "20", "--json", str(js)]
    with pytest.warns(UnpredictedParametersWarning):
        assert main([*argv, "--device", "cpu", "--skip-unknown"]) == 0
    text = capsys.readouterr().out
    assert "not predicted (timm:test_vit" in text and "cls_token" in text
    (row,) = json.loads(js.read_text())["results"]
    assert "cls_token" in row["unpredicted"] and row["predicted_tensors"] == row["tensors"] - len(row["unpredicted"])
