"""Training the zoo: every entry of a YAML config is trained once with Lightning and stored in the zoo.

A config has ``data`` (CIFAR-10 data-module arguments: ``root``, ``limit``, ``batch_size``, ...), ``defaults``
(recipe shared by all entries) and ``models`` (one mapping per entry: ``name`` plus any recipe key to override).
Recipe keys: ``model``, ``model_kwargs``, ``seed``, ``epochs``, ``lr``, ``weight_decay``, ``classes`` (a label
subset; labels are renumbered 0..k-1 in that order), ``limit`` (training images, a fixed random subset of
all ten classes taken before the label subset). Entries already in the zoo are skipped, and an entry killed
mid-training resumes from its last finished epoch (``<zoo>/.partial/<name>/last.ckpt``, our own file, deleted
once the entry is stored); the seed fixes initialisation, data order and augmentation.
"""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.zoo.store import entry_path, save_model

__all__ = ["RECIPE_KEYS", "ClassSubsetCIFAR10", "evaluate", "load_config", "train_entry", "train_zoo"]

RECIPE_KEYS = {"name", "model", "model_kwargs", "seed", "epochs", "lr", "weight_decay", "classes", "limit"}
DEFAULTS: dict[str, Any] = {
    "model": "resnet20",
    "model_kwargs": {},
    "seed": 0,
    "epochs": 5,
    "lr": 0.1,
    "weight_decay": 5e-4,
    "classes": None,
}


def _subset_module() -> type:
    from hyperzoo.data import CIFAR10DataModule
    from hyperzoo.data.sampler import ShardedBatchSampler

    class _Subset(CIFAR10DataModule):
        """CIFAR-10 restricted to a label subset, labels renumbered ``0..k-1`` in the order given.

        Args:
            classes: the CIFAR-10 labels to keep (None keeps all ten).
            **kwargs: :class:`~hyperzoo.data.CIFAR10DataModule` arguments.
        """

        def __init__(self, classes: list[int] | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.keep = list(classes) if classes is not None else None
            self._map: Tensor | None = None
            self._test_idx: Tensor | None = None

        @property
        def num_classes(self) -> int:
            return len(self.keep) if self.keep is not None else 10

        def setup(self, stage: str | None = None) -> None:
            self._num_classes = 10  # the parent checks the raw label count
            fresh = self.train_set is None
            super().setup(stage)
            if not fresh or self.keep is None:
                return
            if any(not 0 <= c < 10 for c in self.keep) or len(set(self.keep)) != len(self.keep):
                raise ConfigError(f"classes must be distinct CIFAR-10 labels 0..9, got {self.keep}")
            self._map = torch.full((10,), -1, dtype=torch.long)
            self._map[torch.tensor(self.keep)] = torch.arange(len(self.keep))
            assert self.train_set is not None and self.train_indices is not None
            labels = self.train_set.labels
            self.train_indices = self.train_indices[self._map[labels[self.train_indices]] >= 0]
            test = self._eval_set(("test", "val"))
            self._test_idx = torch.nonzero(self._map[test.labels] >= 0).flatten()

        def _eval(self) -> Any:
            if self._test_idx is None:
                return super().test_dataloader()
            dataset = self._eval_set(("test", "val"))
            return self._loader(dataset, ShardedBatchSampler(self._test_idx, self.eval_batch_size, shuffle=False))

        def val_dataloader(self) -> Any:
            self.setup()
            return self._eval()

        def test_dataloader(self) -> Any:
            self.setup()
            return self._eval()

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            x, y = super().on_after_batch_transfer(batch, dataloader_idx)
            if self._map is not None:
                y = self._map.to(y.device)[y]
            return x, y

    return _Subset


def ClassSubsetCIFAR10(classes: list[int] | None = None, **kwargs: Any) -> Any:
    """A CIFAR-10 data module restricted to ``classes`` (labels renumbered in that order)."""
    return _subset_module()(classes=classes, **kwargs)


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and checks a zoo config."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"zoo config {path} not found")
    cfg = yaml.safe_load(p.read_text()) or {}
    if not isinstance(cfg.get("models"), list) or not cfg["models"]:
        raise ConfigError(f"zoo config {path} needs a non-empty 'models' list")
    for key in cfg:
        if key not in ("data", "defaults", "models", "trainer"):
            raise ConfigError(f"unknown key {key!r} in zoo config {path}; use data, defaults, models, trainer")
    for i, entry in enumerate([cfg.get("defaults") or {}, *cfg["models"]]):
        bad = set(entry) - RECIPE_KEYS
        if bad:
            raise ConfigError(
                f"unknown recipe keys {sorted(bad)} in zoo config {path} (entry {i}); allowed: {sorted(RECIPE_KEYS)}"
            )
    return cfg


@torch.no_grad()
def evaluate(model: torch.nn.Module, dm: Any, split: str = "test", device: str = "cpu") -> float:
    """Top-1 accuracy of ``model`` on the data module's test (or val) loader."""
    model.eval().to(device)
    loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    right = total = 0
    for batch in loader:
        x, y = dm.on_after_batch_transfer(batch, 0)
        right += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
        total += len(y)
    return right / max(1, total)


def _epoch_logger() -> Any:
    """A callback printing one line per epoch (the zoo trains without a progress bar, possibly under nohup)."""
    import lightning.pytorch as pl

    class EpochLog(pl.Callback):
        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            loss = trainer.callback_metrics.get("train/loss")
            print(
                f"zoo:   epoch {trainer.current_epoch + 1}/{trainer.max_epochs} "
                f"train loss {float(loss) if loss is not None else float('nan'):.4f} "
                f"({time.perf_counter() - self.t0:.0f} s)",
                flush=True,
            )

    return EpochLog()


def train_entry(
    entry: dict[str, Any], data: dict[str, Any], root: str | None = None, trainer_kwargs: dict[str, Any] | None = None
) -> Path:
    """Trains one zoo entry and stores it (weights, recipe, test accuracy, MACs)."""
    import functools

    import lightning.pytorch as pl

    from hyperzoo.lightning.classifier import ImageClassifier
    from hyperzoo.lightning.schedule import WarmupCosineLR
    from hyperzoo.merge.compute import count_macs, count_params

    e = {**DEFAULTS, **entry}
    pl.seed_everything(int(e["seed"]), workers=True)
    data = {**data, **({"limit": int(e["limit"])} if e.get("limit") else {})}
    # the data subset is fixed (seed 0) for every entry; the entry's seed drives init, order and augmentation
    dm = ClassSubsetCIFAR10(classes=e["classes"], **{"seed": 0, **data})
    module = ImageClassifier(
        model=e["model"],
        num_classes=dm.num_classes,
        model_kwargs=dict(e["model_kwargs"]),
        optimizer=functools.partial(
            torch.optim.SGD, lr=float(e["lr"]), momentum=0.9, nesterov=True, weight_decay=float(e["weight_decay"])
        ),
        lr_scheduler=WarmupCosineLR,
    )
    partial = entry_path(e["name"], root).parent / ".partial" / e["name"]
    kwargs = {
        "accelerator": "auto",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **(trainer_kwargs or {}),
    }
    callbacks = [
        *kwargs.pop("callbacks", []),
        _epoch_logger(),
        pl.callbacks.ModelCheckpoint(
            dirpath=partial, filename="last", save_top_k=1, every_n_epochs=1, enable_version_counter=False
        ),
    ]
    trainer = pl.Trainer(
        max_epochs=int(e["epochs"]), num_sanity_val_steps=0, limit_val_batches=0, callbacks=callbacks, **kwargs
    )
    last = partial / "last.ckpt"
    if last.is_file():
        print(f"zoo: resuming {e['name']} from {last}", flush=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # resuming into the directory of the killed run is the point
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        try:  # weights_only: a resume checkpoint is read without unpickling code
            trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.is_file() else None, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise DataError(
                f"{last}: refused to resume from it, torch.load(weights_only=True) rejects it ({exc}); "
                "delete it to train this entry from scratch"
            ) from None
    seconds = time.perf_counter() - t0
    net = copy.deepcopy(module.net).to(memory_format=torch.contiguous_format).cpu().eval()
    acc = evaluate(net, dm)
    dm.setup()
    meta = {
        "model": e["model"],
        "model_kwargs": dict(e["model_kwargs"]),
        "num_classes": dm.num_classes,
        "classes": e["classes"] if e["classes"] is not None else list(range(10)),
        "seed": int(e["seed"]),
        "recipe": {
            "epochs": int(e["epochs"]),
            "lr": float(e["lr"]),
            "weight_decay": float(e["weight_decay"]),
            "optimizer": "sgd-nesterov",
            "schedule": "cosine",
            "batch_size": int(data.get("batch_size", 128)),
        },
        "data": {
            "dataset": "CIFAR-10",
            "root": Path(str(data.get("root", ""))).name,
            "train_images": len(dm.train_indices) if dm.train_indices is not None else None,
        },
        "test_acc": acc,
        "train_seconds": seconds,
        "device": str(next(module.net.parameters()).device),
        "macs": count_macs(net, torch.zeros(1, 3, 32, 32)),
        "params": count_params(net),
    }
    path = save_model(e["name"], net, meta, root)
    shutil.rmtree(partial, ignore_errors=True)
    return path


def train_zoo(
    config: str | os.PathLike,
    root: str | None = None,
    only: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[Path]:
    """Trains every entry of ``config`` that is not in the zoo yet (or only those named in ``only``)."""
    cfg = load_config(config)
    data = {"root": "sample", "batch_size": 128, **(cfg.get("data") or {}), **(overrides or {})}
    defaults = cfg.get("defaults") or {}
    paths = []
    for entry in cfg["models"]:
        entry = {**defaults, **entry}
        if "name" not in entry:
            raise ConfigError(f"every model in {config} needs a 'name'")
        if only and entry["name"] not in only:
            continue
        path = entry_path(entry["name"], root)
        if path.is_file():
            print(f"zoo: {entry['name']} already trained ({path}), skipped")
            continue
        print(f"zoo: training {entry['name']} ...", flush=True)
        paths.append(train_entry(entry, data, root, cfg.get("trainer")))
        print(f"zoo: stored {paths[-1]}", flush=True)
    return paths
