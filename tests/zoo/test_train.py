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


def test_an_entry_killed_mid_training_resumes_from_its_last_epoch(tmp_path, capsys) -> None:
    import lightning.pytorch as pl

    from hyperzoo.zoo.train import train_entry

    class Kill(pl.Callback):
        def on_train_epoch_start(self, trainer, module) -> None:
            if trainer.current_epoch == 1:
                raise RuntimeError("killed")

    class FirstEpoch(pl.Callback):
        def on_train_epoch_start(self, trainer, module) -> None:
            self.first = getattr(self, "first", trainer.current_epoch)

    entry = {"name": "e", "model": "resnet8", "model_kwargs": {"shortcut": "B"}, "epochs": 2, "limit": 128}
    data = {"root": "sample", "batch_size": 64}
    zoo = tmp_path / "zoo"
    with pytest.raises(RuntimeError, match="killed"):
        train_entry(entry, data, zoo, {"callbacks": [Kill()]})
    assert (zoo / ".partial" / "e" / "last.ckpt").is_file()
    first = FirstEpoch()
    train_entry(entry, data, zoo, {"callbacks": [first]})
    out = capsys.readouterr().out
    assert "resuming e" in out and "epoch 2/2" in out
    assert first.first == 1  # epoch 0 was not trained again
    assert load_meta("e", zoo)["recipe"]["epochs"] == 2
    assert not (zoo / ".partial" / "e").exists()
