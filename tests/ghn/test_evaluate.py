"""``hyperzoo.ghn.evaluate``: predicted-parameter evaluation on the embedded CIFAR-10 sample with a tiny GHN."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.errors import ConfigError, DataError, UnknownNameError  # noqa: E402
from hyperzoo.ghn import create_ghn  # noqa: E402
from hyperzoo.ghn.evaluate import (  # noqa: E402
    Architecture,
    EvalImages,
    accuracy,
    architectures_from_names,
    architectures_from_store,
    evaluate_predicted,
    fill_predicted,
    format_table,
    load_eval_data,
    resolve_device,
    summarize,
    to_json,
)
from hyperzoo.nets import create_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TEST_STORE = REPO / "graphs" / "test.h5"


@pytest.fixture(scope="module")
def ghn():
    torch.manual_seed(0)
    return create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)).eval()


@pytest.fixture(scope="module")
def images() -> EvalImages:
    return load_eval_data("sample", limit=128)


def test_eval_images_are_a_fixed_mixed_subset(images):
    assert images.num_images == 128 and images.num_classes == 10
    batches = list(images.batches())
    assert [len(y) for _, y in batches] == [64, 64]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)
    assert len(set(y.tolist())) > 3  # shuffled: the cache stores the images class by class
    assert abs(float(x.mean())) < 1.0  # normalized by the DataModule, not raw 0..255 pixels
    again = load_eval_data("sample", limit=128)
    assert torch.equal(again.indices, images.indices)
    assert load_eval_data("sample").num_images == 1000


def test_evaluate_names_with_baseline(ghn, images):
    results = evaluate_predicted(ghn, architectures_from_names(["resnet8"]), images, baseline_random=True)
    (row,) = results
    assert row.name == "resnet8" and row.num_images == 128
    for key in ("top1", "top5", "baseline_top1", "baseline_top5"):
        assert 0.0 <= getattr(row, key) <= 1.0
    assert row.top1 <= row.top5
    assert row.params == sum(p.numel() for p in create_model("resnet8").parameters())
    assert row.predicted_tensors == row.tensors and row.predict_s > 0 and row.graph_s > 0
    summary = summarize(results)
    assert summary.num_archs == 1 and summary.std_top1 == 0.0 and summary.mean_top1 == row.top1
    table = format_table(results, summary)
    assert "resnet8" in table and "\nmean " in table and "\nstd " in table and "rand top-1" in table
    data = json.loads(to_json(results, ghn="tiny"))
    assert data["ghn"] == "tiny" and data["results"][0]["name"] == "resnet8" and "mean_top5" in data
    # typed results, the same JSON keys as the files written before them
    assert set(data["results"][0]) == {
        "name", "baseline_top1", "baseline_top5", "params", "tensors", "predicted_params", "predicted_tensors",
        "unpredicted", "graph_s", "predict_s", "top1", "top5", "eval_s", "num_images", "model",
    }  # fmt: skip
    assert set(data) - {"ghn", "results"} == {
        "num_archs", "mean_top1", "std_top1", "mean_top5", "std_top5", "mean_predict_s", "mean_params",
        "mean_baseline_top1", "std_baseline_top1", "mean_baseline_top5", "std_baseline_top5",
    }  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.top1 = 1.0  # type: ignore[misc]


def test_evaluate_accepts_modules_and_fills_them(ghn, images):
    model = create_model("resnet8")
    (row,) = evaluate_predicted(ghn, {"mine": model}, images)
    pred = ghn.predict_parameters(create_model("resnet8"))
    assert torch.allclose(model.conv1.weight, pred["conv1.weight"])  # filled in place
    assert model.bn1.training and not model.bn1.track_running_stats  # batch statistics, as the reference evaluates
    assert row.name == "mine" and 0.0 <= row.top1 <= 1.0
    # the same network, evaluated by hand, gets the same accuracy
    assert accuracy(fill_predicted(create_model("resnet8").eval(), pred), images) == (row.top1, row.top5)


def test_evaluate_store_split(ghn, images):
    archs = architectures_from_store(TEST_STORE, indices=[5, 4, 2], limit=2)
    assert [a.info["index"] for a in archs] == [5, 4] and archs[0].graph is not None
    results = evaluate_predicted(ghn, archs, images)
    assert [r.name for r in results] == ["deepnets1m/test/5", "deepnets1m/test/4"]
    for r in results:
        assert r.graph_s == 0.0  # the stored graph is reused
        assert 0.0 <= r.top1 <= r.top5 <= 1.0 and r.info["net_args"]
    s = summarize(results)
    assert s.num_archs == 2 and s.std_top1 >= 0.0


def test_errors(ghn, images):
    with pytest.raises(UnknownNameError, match="resnet18"):
        architectures_from_names(["resnet18x"])
    with pytest.raises(ConfigError, match="no model names"):
        architectures_from_names([" "])
    with pytest.raises(ConfigError, match="outside"):
        architectures_from_store(TEST_STORE, indices=[100])
    with pytest.raises(DataError, match="not found"):
        architectures_from_store(REPO / "graphs" / "missing.h5")
    cifar100 = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3), num_classes=100)
    with pytest.raises(ConfigError, match="100 classes"):
        evaluate_predicted(cifar100, [Architecture("resnet8", lambda: create_model("resnet8"))], images)
    with pytest.raises(ConfigError, match=r"limit=0: must be at least 1"):  # the argument, not a flag
        load_eval_data("sample", limit=0)
    with pytest.raises(ConfigError, match=r"batch_size=0: must be at least 1"):
        EvalImages(images.dm, batch_size=0)
    with pytest.raises(ConfigError, match=r"device='gpu7'"):
        resolve_device("gpu7")
    with pytest.raises(ConfigError, match="no results"):
        summarize([])


class _LayerScaleNet(torch.nn.Module):
    """A tiny CNN with a layer-scale parameter, an op outside the 15-op vocabulary of GHN-2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.gamma = torch.nn.Parameter(torch.full((8, 1, 1), 0.5))
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((self.gamma * torch.relu(self.bn(self.conv(x)))).mean((2, 3)))


def test_skip_unknown(ghn, images):
    from hyperzoo.ghn import UnpredictableLayerError

    with pytest.raises(UnpredictableLayerError, match="gamma"):
        evaluate_predicted(ghn, {"ls": _LayerScaleNet()}, images)
    model = _LayerScaleNet()
    with pytest.warns(UserWarning, match="unpredicted"):
        (row,) = evaluate_predicted(ghn, {"ls": model}, images, skip_unknown=True)
    assert row.predicted_tensors == row.tensors - 1 and 0.0 <= row.top1 <= 1.0
    assert torch.all(model.gamma == 0.5)  # left as it was
