"""Training a zoo entry from a config on the embedded CIFAR-10 sample."""

from __future__ import annotations

import pytest
import torch

from hyperzoo.errors import ConfigError
from hyperzoo.zoo.store import load_meta, load_model
from hyperzoo.zoo.train import ClassSubsetCIFAR10, load_config, train_zoo

CONFIG = """
data: {root: sample, batch_size: 64}
defaults: {model: resnet8, model_kwargs: {shortcut: B}, epochs: 1}
models:
  - {name: half, seed: 0, classes: [5, 6, 7, 8, 9], limit: 300}
"""


def test_class_subset_renumbers_labels() -> None:
    dm = ClassSubsetCIFAR10(classes=[7, 2], root="sample", batch_size=50)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 2
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert set(y.tolist()) <= {0, 1} and x.dtype == torch.float32
    assert len(dm.train_indices) == 200  # 100 sample images per class


def test_train_zoo_is_resumable(tmp_path, capsys) -> None:
    cfg = tmp_path / "zoo.yaml"
    cfg.write_text(CONFIG)
    train_zoo(cfg, root=tmp_path / "zoo")
    meta = load_meta("half", tmp_path / "zoo")
    assert meta["classes"] == [5, 6, 7, 8, 9] and meta["num_classes"] == 5 and 0 <= meta["test_acc"] <= 1
    assert meta["data"]["train_images"] < 300
    assert load_model("half", tmp_path / "zoo").fc.out_features == 5
    train_zoo(cfg, root=tmp_path / "zoo")
    assert "already trained" in capsys.readouterr().out


def test_bad_config(tmp_path) -> None:
    cfg = tmp_path / "zoo.yaml"
    cfg.write_text("models: [{name: a, epoch: 3}]")
    with pytest.raises(ConfigError, match=r"unknown recipe keys \['epoch'\]"):
        load_config(cfg)
