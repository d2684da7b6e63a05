"""ONNX -> ArchGraph equals nn.Module -> ArchGraph; writing parameters back as initializers."""

import contextlib
import io
import json
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from onnx import TensorProto, helper  # noqa: E402

from hyperzoo.cli import main  # noqa: E402
from hyperzoo.errors import HyperzooError  # noqa: E402
from hyperzoo.graphs import graph_from_module  # noqa: E402
from hyperzoo.graphs.onnx import (  # noqa: E402
    FoldedBatchNormError,
    OnnxParameterError,
    UnsupportedOnnxOpError,
    graph_from_onnx,
    onnx_parameter_names,
    strip_initializers,
    write_onnx_initializers,
)
from hyperzoo.nets import create_model  # noqa: E402

# Exports take seconds each (dynamo): a few families by default, the rest with -m slow.
FAST = ["resnet18", "squeezenet1_1", "alexnet", "mobilenet_v3_small"]
SLOW = [
    "vgg11_bn",
    "mobilenet_v2",
    "densenet121",
    "shufflenet_v2_x0_5",
    "mnasnet0_5",
    "efficientnet_b0",
    "regnet_x_400mf",
    "googlenet",
    "convnext_tiny",
]


def _export(model: torch.nn.Module) -> "onnx.ModelProto":
    """The recipe that keeps the structure: eval mode, dynamo exporter, no optimizer (it folds batch norms)."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        program = torch.onnx.export(model, (x,), dynamo=True, optimize=False)
    return program.model_proto


@pytest.fixture(scope="module")
def exported():
    """``name -> (eval-mode model, exported proto)``, each family exported once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            model = create_model(name, num_classes=10, adapt_cifar=True).eval()
            cache[name] = (model, _export(model))
        return cache[name]

    return get


def _assert_same(a, b):
    assert a.param_names == b.param_names
    assert torch.equal(a.op, b.op)
    assert torch.equal(a.shape, b.shape)
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.edge_dist, b.edge_dist)


def _check_family(exported, name):
    model, proto = exported(name)
    expected = graph_from_module(model, input_size=32)
    with_init = graph_from_onnx(proto)
    _assert_same(with_init, expected)
    assert with_init.unsupported_ops == [] and with_init.unmapped == []
    assert with_init.num_params == expected.num_params
    stripped = strip_initializers(proto)
    assert not any(i.name in with_init.param_names for i in stripped.graph.initializer)
    _assert_same(graph_from_onnx(stripped), expected)


@pytest.mark.parametrize("name", FAST)
def test_family_matches_module(exported, name):
    _check_family(exported, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_family_matches_module_slow(exported, name):
    _check_family(exported, name)


def test_from_path_and_name(exported, tmp_path):
    _, proto = exported("resnet18")
    path = tmp_path / "net.onnx"
    onnx.save(proto, str(path))
    g = graph_from_onnx(path, s_max=1)
    assert g.name in ("net", proto.graph.name)
    assert set(g.edge_dist.tolist()) == {1}
    assert graph_from_onnx(str(path), name="custom").name == "custom"


def test_folded_batch_norm_is_refused(exported):
    _, proto = exported("resnet18")
    folded = onnx.ModelProto()
    folded.CopyFrom(proto)
    conv = next(n for n in folded.graph.node if n.op_type == "Conv")
    conv.metadata_props.add(key="pkg.onnxscript.rewriter.rule_name", value="FuseBatchNormIntoConv")
    with pytest.raises(FoldedBatchNormError, match="optimize=False"):
        graph_from_onnx(folded)


def _tiny_model(exotic: str = "Hardmax") -> "onnx.ModelProto":
    """x -> Conv(w, b) -> <exotic op> -> Relu -> Conv(w2): a hand-made graph without torch metadata."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("conv1.weight", TensorProto.FLOAT, [4, 3, 3, 3], rng.normal(size=108).tolist())
    b = helper.make_tensor("conv1.bias", TensorProto.FLOAT, [4], [0.0] * 4)
    w2 = helper.make_tensor("conv2.weight", TensorProto.FLOAT, [2, 4, 1, 1], [0.1] * 8)
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["h"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node(exotic, ["h"], ["e"], name="exotic"),
        helper.make_node("Relu", ["e"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "conv2.weight"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
        initializer=[w, b, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def test_unsupported_ops_are_listed():
    g = graph_from_onnx(_tiny_model())
    assert g.unsupported_ops == ["Hardmax (exotic)"]
    assert g.param_names == ["", "conv1.weight", "conv1.bias", "conv2.weight"]
    assert g.name == "tiny" and g.num_params == 108 + 4 + 8
    with pytest.raises(UnsupportedOnnxOpError, match=r"Hardmax \(exotic\)"):
        graph_from_onnx(_tiny_model(), strict=True)
    assert graph_from_onnx(_tiny_model("Tanh"), strict=True).unsupported_ops == []


def test_data_inputs(exported):
    stripped = strip_initializers(_tiny_model("Tanh"))
    assert onnx_parameter_names(stripped) == ["conv1.weight", "conv1.bias", "conv2.weight"]
    assert graph_from_onnx(stripped, data_inputs=["x"]).param_names[1:] == [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
    ]
    with pytest.raises(HyperzooError, match="not graph inputs"):
        graph_from_onnx(stripped, data_inputs=["image"])


def test_writer_round_trip_with_onnxruntime(exported, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, proto = exported("resnet18")
    stripped = strip_initializers(proto)
    out = tmp_path / "written.onnx"
    written = write_onnx_initializers(stripped, model.state_dict(), out=out)
    assert out.is_file() and {i.name for i in written.graph.input} == {"x"}
    x = torch.randn(2, 3, 32, 32)
    session = ort.InferenceSession(written.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # replacing existing initializers: a scaled classifier changes the output accordingly
    params = {"fc.weight": model.fc.weight.detach() * 2, "fc.bias": model.fc.bias.detach() * 2}
    session = ort.InferenceSession(write_onnx_initializers(written, params).SerializeToString())
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], want * 2, rtol=1e-4, atol=1e-4)


def test_writer_errors(exported):
    model, proto = exported("resnet18")
    state = model.state_dict()
    with pytest.raises(OnnxParameterError, match="not weights"):
        write_onnx_initializers(proto, {"nope.weight": torch.zeros(1)})
    with pytest.raises(OnnxParameterError, match=r"fc.weight: given \(3, 3\)"):
        write_onnx_initializers(proto, {"fc.weight": torch.zeros(3, 3)})
    partial = {k: v for k, v in state.items() if k != "conv1.weight"}
    with pytest.raises(OnnxParameterError, match=r"conv1\.weight"):
        write_onnx_initializers(strip_initializers(proto), partial)


def test_cli_info_onnx(exported, tmp_path, capsys):
    model, proto = exported("resnet18")
    path = tmp_path / "resnet18.onnx"
    onnx.save(proto, str(path))
    assert main(["graphs", "info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = graph_from_module(model, input_size=32)
    assert data["num_nodes"] == expected.num_nodes
    assert data["param_names"] == expected.param_names


def test_missing_onnx_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(HyperzooError, match=r"hyperzoo\[onnx\]"):
        graph_from_onnx("model.onnx")


def test_corrupt_and_truncated_onnx_files_are_refused(exported, tmp_path):
    from hyperzoo.errors import DataError

    _, good = exported("resnet18")
    path = tmp_path / "good.onnx"
    onnx.save(good, str(path))
    data = path.read_bytes()
    (tmp_path / "trunc.onnx").write_bytes(data[: len(data) // 3])
    (tmp_path / "junk.onnx").write_bytes(b"this is not a protobuf" * 10)
    for bad in ("trunc.onnx", "junk.onnx"):
        with pytest.raises(DataError, match="cannot read"):
            graph_from_onnx(str(tmp_path / bad))
    with pytest.raises(DataError, match="not found"):
        graph_from_onnx(str(tmp_path / "missing.onnx"))
