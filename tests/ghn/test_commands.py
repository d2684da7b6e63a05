"""``hyperzoo eval-ghn`` and ``hyperzoo predict`` (registered models and ONNX files) with a tiny GHN checkpoint."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.cli import main  # noqa: E402
from hyperzoo.ghn import create_ghn, load_ghn, save_ghn  # noqa: E402
from hyperzoo.ghn.commands import parse_indices  # noqa: E402
from hyperzoo.nets import create_model  # noqa: E402
from tests.paths import SHARED_CIFAR10  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TEST_STORE = REPO / "graphs" / "test.h5"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GHN-2 saved in hyperzoo's format."""
    torch.manual_seed(0)
    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3))
    return save_ghn(ghn, tmp_path_factory.mktemp("ghn") / "tiny.safetensors", note="test")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyperzoo: error: ") and "\n" not in err and "Traceback" not in err
    return err


# ---------------------------------------------------------------------------------------------- eval-ghn
def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "eval-ghn" in out and "predict" in out
    for cmd in ("eval-ghn", "predict"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "--ghn CKPT" in capsys.readouterr().out


def test_eval_models_table_and_json(ckpt, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = ["eval-ghn", "--ghn", str(ckpt), "--models", "resnet8", "--limit-images", "100", "--json", str(out)]
    assert main([*args, "--device", "cpu", "--baseline-random"]) == 0
    text = capsys.readouterr().out
    assert "resnet8" in text and "top-1" in text and "100 test images" in text
    assert "\nmean " in text and "\nstd " in text
    data = json.loads(out.read_text())
    assert data["ghn"] == str(ckpt) and data["data"] == "sample" and data["models"] == ["resnet8"]
    assert data["num_images"] == 100 and data["batch_size"] == 64 and data["split"] is None
    (row,) = data["results"]
    for key in ("top1", "top5", "baseline_top1", "baseline_top5"):
        assert 0.0 <= row[key] <= 1.0
    assert data["mean_top1"] == row["top1"] and data["std_top1"] == 0.0 and row["predict_s"] > 0


def test_eval_split(ckpt, tmp_path, capsys):
    out = tmp_path / "split.json"
    args = ["eval-ghn", "--ghn", str(ckpt), "--split", str(TEST_STORE), "--archs", "5,4,2", "--limit-archs", "2"]
    assert main([*args, "--limit-images", "200", "--json", str(out), "--device", "cpu"]) == 0
    assert "deepnets1m/test/5" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["split"] == str(TEST_STORE) and data["num_images"] == 200
    assert [r["index"] for r in data["results"]] == [5, 4]
    assert all(0.0 <= r["top1"] <= r["top5"] <= 1.0 for r in data["results"])
    assert data["mean_top1"] == pytest.approx(sum(r["top1"] for r in data["results"]) / 2)


def test_eval_errors(ckpt, tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    assert main(["eval-ghn", "--ghn", str(missing), "--models", "resnet8"]) == 2
    err = _one_line_error(capsys)
    assert "nope.safetensors" in err and "no such file" in err and "ghn2-cifar10" in err
    assert main(["eval-ghn", "--ghn", str(ckpt), "--models", "resnet8,resnt50"]) == 2
    err = _one_line_error(capsys)
    assert "'resnt50'" in err and "did you mean" in err and "'resnet50'" in err
    assert main(["eval-ghn", "--ghn", str(ckpt), "--split", str(tmp_path / "x.h5")]) == 2
    assert "graphs/test.h5" in _one_line_error(capsys)
    assert main(["eval-ghn", "--ghn", str(ckpt), "--models", "resnet8", "--archs", "1"]) == 2
    assert "--split" in _one_line_error(capsys)
    assert main(["eval-ghn", "--ghn", str(ckpt), "--split", str(TEST_STORE), "--archs", "1-x"]) == 2
    assert "0,4,10-19" in _one_line_error(capsys)
    assert main(["eval-ghn", "--ghn", str(ckpt), "--models", "resnet8", "--dataset", "cifar100"]) == 2
    err = _one_line_error(capsys)
    assert "10 classes" in err and "100" in err
    with pytest.raises(SystemExit):  # argparse: --split and --models are exclusive, one is required
        main(["eval-ghn", "--ghn", str(ckpt)])
    capsys.readouterr()


def test_parse_indices():
    assert parse_indices("3") == [3]
    assert parse_indices("0,4,7-9") == [0, 4, 7, 8, 9]


# ---------------------------------------------------------------------------------------------- predict
def test_predict_safetensors_round_trip(ckpt, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file

    out = tmp_path / "resnet20.safetensors"
    assert main(["predict", "resnet20", "--ghn", str(ckpt), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parameters" in text and "ms" in text and f"wrote {out}" in text
    model = create_model("resnet20")
    state = load_file(str(out))
    model.load_state_dict(state)  # strict: parameters and buffers
    ghn = load_ghn(ckpt)
    with torch.no_grad():
        expected = ghn.predict_parameters(create_model("resnet20"))
    assert set(expected) == {n for n, _ in model.named_parameters()}
    for name, tensor in expected.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=0)
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["model"] == "resnet20" and meta["ghn"] == str(ckpt) and meta["num_classes"] == "10"
    assert json.loads(meta["adapt_cifar"]) is False and json.loads(meta["unpredicted"]) == []


def test_predict_adapted_torchvision_model(ckpt, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file

    out = tmp_path / "squeezenet.safetensors"
    assert main(["predict", "squeezenet1_1", "--adapt-cifar", "--ghn", str(ckpt), "--out", str(out)]) == 0
    capsys.readouterr()
    create_model("squeezenet1_1", num_classes=10, adapt_cifar=True).load_state_dict(load_file(str(out)))
    with safe_open(str(out), framework="pt") as f:
        assert json.loads(f.metadata()["adapt_cifar"]) is True


def test_predict_errors(ckpt, tmp_path, capsys):
    out = str(tmp_path / "m.safetensors")
    assert main(["predict", "resnet2O", "--ghn", str(ckpt), "--out", out]) == 2
    err = _one_line_error(capsys)
    assert "'resnet2O'" in err and "'resnet20'" in err
    assert main(["predict", "resnet20", "--ghn", str(tmp_path / "none.pt"), "--out", out]) == 2
    assert "none.pt" in _one_line_error(capsys)
    assert main(["predict", "resnet20", "--ghn", str(ckpt), "--out", out, "--num-classes", "100"]) == 2
    err = _one_line_error(capsys)
    assert "--num-classes 100" in err and "10 classes" in err
    assert main(["predict", "resnet20", "--ghn", str(ckpt), "--out", str(tmp_path / "m.pt")]) == 2
    assert ".safetensors" in _one_line_error(capsys)
    assert main(["predict", "--ghn", str(ckpt), "--out", out]) == 2
    assert "MODEL or --onnx" in _one_line_error(capsys)
    assert main(["predict", "--onnx", str(tmp_path / "in.onnx"), "--ghn", str(ckpt), "--out", "o.onnx"]) == 2
    assert "in.onnx" in _one_line_error(capsys)
    assert not Path(out).exists()


# ---------------------------------------------------------------------------------------------- predict --onnx
@pytest.fixture(scope="module")
def resnet18_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resnet18 (adapted to 32x32) exported with the recipe that keeps batch norms, saved without initializers."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from hyperzoo.graphs.onnx import strip_initializers

    model = create_model("resnet18", num_classes=10, adapt_cifar=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        program = torch.onnx.export(model, (x,), dynamo=True, optimize=False)
    path = tmp_path_factory.mktemp("onnx") / "resnet18.onnx"
    onnx.save(strip_initializers(program.model_proto), str(path))
    return path


def test_predict_onnx_equals_module_path_and_runs(ckpt, resnet18_onnx, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "predicted.onnx"
    assert main(["predict", "--onnx", str(resnet18_onnx), "--ghn", str(ckpt), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "resnet18.onnx" in text and f"wrote {out}" in text and "running statistics" in text
    written = onnx.load(str(out))
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in written.graph.initializer}
    ghn = load_ghn(ckpt)
    model = create_model("resnet18", num_classes=10, adapt_cifar=True)
    with torch.no_grad():
        expected = ghn.predict_parameters(model)
    assert set(expected) == {n for n, _ in model.named_parameters()}
    for name, tensor in expected.items():
        torch.testing.assert_close(inits[name], tensor, rtol=1e-6, atol=1e-6)
    assert torch.all(inits["bn1.running_mean"] == 0) and torch.all(inits["bn1.running_var"] == 1)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    logits = session.run(None, {inp.name: np.random.default_rng(0).standard_normal((2, 3, 32, 32), np.float32)})[0]
    assert logits.shape == (2, 10) and np.isfinite(logits).all()


def test_predict_onnx_errors(ckpt, resnet18_onnx, tmp_path, capsys):
    args = ["predict", "--onnx", str(resnet18_onnx), "--ghn", str(ckpt)]
    assert main([*args, "--out", str(tmp_path / "o.safetensors")]) == 2
    assert ".onnx" in _one_line_error(capsys)
    assert main(["predict", "resnet18", *args[1:], "--out", str(tmp_path / "o.onnx")]) == 2
    assert "not both" in _one_line_error(capsys)
    assert main([*args, "--out", str(tmp_path / "o.onnx"), "--adapt-cifar"]) == 2
    assert "--adapt-cifar" in _one_line_error(capsys)
    cifar100 = save_ghn(create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_classes=100), tmp_path / "c100")
    assert main(["predict", "--onnx", str(resnet18_onnx), "--ghn", str(cifar100), "--out", "x.onnx"]) == 2
    err = _one_line_error(capsys)
    assert "10 outputs" in err and "100 classes" in err


# ---------------------------------------------------------------------------------------------- full CIFAR-10


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR10.is_file(), reason="needs ../shared/data/cifar10-jpeg.tar.gz beside the repo")
def test_eval_on_full_cifar10(ckpt, tmp_path, capsys):
    out = tmp_path / "full.json"
    args = ["eval-ghn", "--ghn", str(ckpt), "--models", "resnet8", "--data", str(SHARED_CIFAR10)]
    assert main([*args, "--limit-images", "1000", "--json", str(out), "--device", "cpu"]) == 0
    assert "1000 test images" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["num_images"] == 1000 and 0.0 <= data["mean_top1"] <= 1.0
