"""hyperzoo.ghn.onnx_predict: a GHN's prediction for an ONNX model, written into it as initializers."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from hyperzoo.errors import ConfigError, DataError  # noqa: E402
from hyperzoo.ghn import create_ghn  # noqa: E402
from hyperzoo.ghn.onnx_predict import load_onnx, onnx_weight_shapes, predict_onnx, shim_module  # noqa: E402
from hyperzoo.ghn.results import OnnxPrediction  # noqa: E402
from hyperzoo.graphs.onnx import strip_initializers  # noqa: E402


class _Small(nn.Module):
    """conv - bn - relu - pool - linear: every op a GHN-2 embeds, with batch-norm buffers."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _export(model: nn.Module) -> onnx.ModelProto:
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        return torch.onnx.export(model.eval(), (x,), dynamo=True, optimize=False).model_proto


@pytest.fixture(scope="module")
def ghn() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)).eval()


@pytest.fixture(scope="module")
def small() -> tuple[nn.Module, onnx.ModelProto]:
    torch.manual_seed(0)
    model = _Small()
    return model, _export(model)


def test_weight_shapes_from_initializers_or_inputs(small):
    model, proto = small
    shapes, missing = onnx_weight_shapes(proto)
    assert missing == set()
    for name, p in model.named_parameters():
        assert shapes[name] == tuple(p.shape)
    assert shapes["bn.running_mean"] == (8,)
    stripped_shapes, stripped_missing = onnx_weight_shapes(strip_initializers(proto))
    assert stripped_shapes == shapes  # a stripped model declares them as typed graph inputs
    assert {n for n, _ in model.named_parameters()} <= stripped_missing


def test_shim_module_has_the_names_and_shapes_on_meta():
    shim = shim_module({"block.bn.weight": (8,), "block.bn.bias": (8,), "fc.weight": (10, 8)}, {"block.bn"})
    params = dict(shim.named_parameters())
    assert {n: tuple(p.shape) for n, p in params.items()} == {
        "block.bn.weight": (8,),
        "block.bn.bias": (8,),
        "fc.weight": (10, 8),
    }
    assert all(p.is_meta and not p.requires_grad for p in params.values())
    assert isinstance(shim.block.bn, nn.LayerNorm) and not isinstance(shim.fc, nn.LayerNorm)


def test_predict_onnx_equals_the_module_prediction(ghn, small, tmp_path):
    model, proto = small
    out = tmp_path / "small.onnx"
    result = predict_onnx(ghn, strip_initializers(proto), out)
    assert isinstance(result, OnnxPrediction) and out.is_file()
    with torch.no_grad():
        expected = ghn.predict_parameters(model)
    assert set(expected) == {n for n, _ in model.named_parameters()}
    for name, tensor in expected.items():
        torch.testing.assert_close(result.values[name], tensor, rtol=1e-6, atol=1e-6)
    assert result.reset_buffers == ("bn.running_mean", "bn.running_var")
    assert torch.all(result.values["bn.running_var"] == 1) and torch.all(result.values["bn.running_mean"] == 0)
    assert result.predicted_tensors == result.tensors == 6 and result.unpredicted == ()
    assert result.params == result.predicted_params == sum(p.numel() for p in model.parameters())
    names = {i.name for i in result.model.graph.initializer}
    assert set(expected) <= names
    as_json = result.to_json()
    assert "model" not in as_json and "values" not in as_json and as_json["reset_buffers"] == list(result.reset_buffers)


def test_predict_onnx_errors_name_what_to_do(ghn, tmp_path):
    proto = _export(_Small(num_classes=7))
    with pytest.raises(ConfigError, match=r"7 outputs .* 10 classes; export the model with num_classes=10"):
        predict_onnx(ghn, proto)
    with pytest.raises(DataError, match="not found"):
        load_onnx(tmp_path / "missing.onnx")


def test_old_import_location_still_works():
    from hyperzoo.ghn import commands, onnx_predict

    assert commands.predict_onnx is onnx_predict.predict_onnx
    assert commands.onnx_weight_shapes is onnx_predict.onnx_weight_shapes
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        commands.nope  # noqa: B018
