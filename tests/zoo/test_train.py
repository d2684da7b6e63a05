"""The zoo's training recipe: entry configs, the entry writer, class subsets (runs: tests/lightning/test_zoo_train.py).

``CONFIG`` is the zoo config both test modules use.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hyperzoo.data import ClassSubsetCIFAR10DataModule
from hyperzoo.errors import ConfigError
from hyperzoo.zoo.train import ZooEntryWriter, entry_config, zoo_entries

CONFIG = """
seed_everything: 0
ckpt_path: last
trainer:
  max_epochs: 1
  accelerator: cpu
  devices: 1
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  limit_val_batches: 0
  callbacks:
    - class_path: hyperzoo.lightning.resume.ResumableCheckpoint
      init_args: {dirpath: "{root}", every_n_train_steps: 0}
    - class_path: hyperzoo.zoo.ZooEntryWriter
      init_args:
        name: e
        entries:
          e: {trainer.max_epochs: 2, data.init_args.limit: 128}
          half: {seed_everything: 1, data.init_args.classes: [5, 6, 7, 8, 9], data.init_args.limit: 300}
model:
  class_path: hyperzoo.lightning.ImageClassifier
  init_args:
    model: resnet8
    model_kwargs: {shortcut: B}
    optimizer:
      class_path: torch.optim.SGD
      init_args: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5.0e-4}
    lr_scheduler: {class_path: hyperzoo.lightning.schedule.WarmupCosineLR, init_args: {warmup_epochs: 0.0}}
data:
  class_path: hyperzoo.data.ClassSubsetCIFAR10DataModule
  init_args: {root: sample, batch_size: 64, seed: 0}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "zoo.yaml"
    path.write_text(CONFIG)
    return path


def test_class_subset_renumbers_labels() -> None:
    dm = ClassSubsetCIFAR10DataModule(classes=[7, 2], root="sample", batch_size=50)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 2
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert set(y.tolist()) <= {0, 1} and x.dtype == torch.float32
    assert len(dm.train_indices) == 200  # 100 sample images per class
    with pytest.raises(ConfigError, match=r"^classes=\[1, 1\]: must be distinct CIFAR-10 labels"):
        ClassSubsetCIFAR10DataModule(classes=[1, 1], root="sample")


def test_entry_configs(config, tmp_path) -> None:
    cfg = entry_config(config, "half", tmp_path / "zoo", data={"root": "elsewhere"})
    assert cfg["seed_everything"] == 1 and cfg["data"]["init_args"]["classes"] == [5, 6, 7, 8, 9]
    assert cfg["data"]["init_args"]["root"] == "elsewhere"
    assert cfg["trainer"]["default_root_dir"] == str(tmp_path / "zoo" / ".partial" / "half")
    with pytest.raises(ConfigError, match=r"no entry 'nope'"):
        entry_config(config, "nope")
    assert zoo_entries(config) == (["e", "half"], None)
    with pytest.raises(ConfigError, match=r"not one of the config's entries"):
        ZooEntryWriter("nope", entries={"a": {}})
