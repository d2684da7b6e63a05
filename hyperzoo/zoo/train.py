"""A zoo's training recipe: one ``hyperzoo fit`` (LightningCLI) config per entry, stored in the zoo by a callback.

A zoo config (``experiments/configs/zoo_cifar10.yaml``) is an ordinary LightningCLI config: an
:class:`~hyperzoo.lightning.ImageClassifier` on a :class:`~hyperzoo.data.ClassSubsetCIFAR10DataModule`, with a
:class:`~hyperzoo.lightning.resume.ResumableCheckpoint` and a :class:`ZooEntryWriter` among the trainer's callbacks.
The writer names the entry the run trains and lists the zoo's entries, each as the config overrides that make it
(dotted keys, as on the command line: ``seed_everything``, ``model.init_args.model_kwargs``,
``data.init_args.classes``, ``data.init_args.limit``, ...).

``hyperzoo fit --config zoo_cifar10.yaml`` trains the config as written (its first entry);
``hyperzoo zoo train --config zoo_cifar10.yaml`` (:func:`hyperzoo.lightning.zoo_train.train_zoo`, in the Lightning
layer) runs the same LightningCLI ``fit`` once per entry with the overrides :func:`entry_config` gives. Every entry
trains in ``<zoo>/.partial/<name>``: entries already in the zoo are skipped, an entry killed mid-training resumes
from its ``last.ckpt`` (``ckpt_path: last``; read with ``torch.load(weights_only=True)``), and the folder is deleted
once the entry is stored. The seed fixes initialisation, data order and augmentation; the data subset
(``data.init_args.seed``) is the same for every entry.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from hyperzoo.config_yaml import callback_args, read_config, set_key
from hyperzoo.errors import ConfigError
from hyperzoo.zoo.store import check_new_entry, entry_path, save_model, zoo_dir

__all__ = ["ClassSubsetCIFAR10", "ZooEntryWriter", "entry_config", "evaluate", "writer_args", "zoo_entries"]


def ClassSubsetCIFAR10(classes: list[int] | None = None, **kwargs: Any) -> Any:
    """A CIFAR-10 data module restricted to ``classes`` (:class:`~hyperzoo.data.ClassSubsetCIFAR10DataModule`)."""
    from hyperzoo.data.class_subset import ClassSubsetCIFAR10DataModule

    return ClassSubsetCIFAR10DataModule(classes=classes, **kwargs)


@torch.no_grad()
def evaluate(model: torch.nn.Module, dm: Any, split: str = "test", device: str = "cpu") -> float:
    """Top-1 accuracy of ``model`` on the data module's test (or val) loader (never augmented, even in a fit)."""
    model.eval().to(device)
    loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    right = total = 0
    trainer, dm.trainer = getattr(dm, "trainer", None), None  # a data module attached to a fit would augment
    try:
        for batch in loader:
            x, y = dm.on_after_batch_transfer(batch, 0)
            right += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
            total += len(y)
    finally:
        dm.trainer = trainer
    return right / max(1, total)


class ZooEntryWriter(pl.Callback):
    """Stores the network a ``fit`` trained as zoo entry ``name`` (weights, recipe, test accuracy, MACs).

    Refuses an entry that exists before any training; prints one line per epoch (the zoo trains without a
    progress bar, possibly under nohup); after the run, evaluates the network on the test split of the data
    module, stores it with :func:`~hyperzoo.zoo.store.save_model` and deletes the run's folder when it is the
    entry's own ``<zoo>/.partial/<name>``.

    Args:
        name: the entry this run trains.
        zoo: zoo directory (None: ``$HYPERZOO_ZOO`` or ``./zoo``).
        entries: the zoo's entries, name -> config overrides (dotted keys); ``hyperzoo zoo train`` trains each.
            When given, ``name`` must be one of them.

    Raises:
        ConfigError: ``name`` not among ``entries``, or a bad entry name.
    """

    def __init__(self, name: str, zoo: str | None = None, entries: dict[str, dict[str, Any] | None] | None = None):
        entry_path(name, zoo)  # checks the name
        if entries is not None and name not in entries:
            raise ConfigError(f"ZooEntryWriter name {name!r} is not one of the config's entries {sorted(entries)}")
        self.name, self.zoo, self.entries = name, zoo, entries
        self._t0 = self._epoch_t0 = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if (
            not isinstance(getattr(pl_module, "net", None), torch.nn.Module)
            or getattr(trainer, "datamodule", None) is None
        ):
            raise ConfigError(
                f"ZooEntryWriter stores a LightningModule's `net` trained on a data module; "
                f"{type(pl_module).__name__} has no `net` or the run has no data module"
            )
        check_new_entry(self.name, self.zoo)  # before the work, not after it

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.ckpt_path:
            print(f"zoo: resuming {self.name} from {trainer.ckpt_path}", flush=True)
        self._t0 = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        print(
            f"zoo:   epoch {trainer.current_epoch + 1}/{trainer.max_epochs} "
            f"train loss {float(loss) if loss is not None else float('nan'):.4f} "
            f"({time.perf_counter() - self._epoch_t0:.0f} s)",
            flush=True,
        )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(trainer, "fast_dev_run", False) or not trainer.is_global_zero:
            return  # a debug run stores nothing
        seconds = time.perf_counter() - self._t0
        dm: Any = trainer.datamodule  # type: ignore[attr-defined]
        net: Any = pl_module.net
        device = str(next(net.parameters()).device)
        net = copy.deepcopy(net).to(memory_format=torch.contiguous_format).cpu().eval()
        meta = _entry_meta(pl_module, dm, trainer, net, seconds, device)
        path = save_model(self.name, net, meta, self.zoo)
        partial = zoo_dir(self.zoo) / ".partial" / self.name
        if Path(trainer.default_root_dir).resolve() == partial.resolve():
            shutil.rmtree(partial, ignore_errors=True)
        print(f"zoo: stored {path}", flush=True)


def _entry_meta(
    module: pl.LightningModule, dm: Any, trainer: pl.Trainer, net: torch.nn.Module, seconds: float, device: str
) -> dict[str, Any]:
    """The metadata of a trained zoo entry (what rebuilds it, its recipe and its results)."""
    from hyperzoo.nets.compute import count_macs, count_params

    hp: Any = module.hparams
    acc = evaluate(net, dm)
    dm.setup()
    keep = getattr(dm, "keep", None)
    recipe: dict[str, Any] = {"epochs": int(trainer.max_epochs or 0), "batch_size": int(dm.batch_size)}
    opt = hp.get("optimizer")
    if isinstance(opt, dict) and "class_path" in opt:  # {class_path: torch.optim.SGD, init_args: {lr, ...}}
        args = dict(opt.get("init_args") or {})
        recipe["optimizer"] = str(opt["class_path"]).rsplit(".", 1)[-1].lower() + (
            "-nesterov" if args.get("nesterov") else ""
        )
        recipe.update({k: args[k] for k in ("lr", "weight_decay") if k in args})
    sched = hp.get("lr_scheduler")
    if isinstance(sched, dict) and "class_path" in sched:
        recipe["schedule"] = str(sched["class_path"]).rsplit(".", 1)[-1]
    return {
        "model": hp["model"],
        "model_kwargs": dict(hp.get("model_kwargs") or {}),
        "num_classes": dm.num_classes,
        "classes": list(keep) if keep is not None else list(range(dm.num_classes)),
        "seed": int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed())),
        "recipe": recipe,
        "data": {
            "dataset": "CIFAR-10",
            "root": Path(str(dm.root or "")).name,
            "train_images": len(dm.train_indices) if dm.train_indices is not None else None,
        },
        "test_acc": acc,
        "train_seconds": seconds,
        "device": device,
        "macs": count_macs(net, torch.zeros(1, 3, 32, 32)),
        "params": count_params(net),
    }


# -- the config of each entry (hyperzoo.lightning.zoo_train runs one fit per entry) --


def _read(config: str | os.PathLike) -> dict[str, Any]:
    return read_config(config, "zoo config")


def writer_args(cfg: dict[str, Any], config: str | os.PathLike) -> dict[str, Any]:
    """The ``init_args`` of the :class:`ZooEntryWriter` callback of ``cfg`` (the zoo config ``config``, read).

    Raises:
        ConfigError: the config has no ZooEntryWriter among its trainer callbacks.
    """
    return callback_args(cfg, "ZooEntryWriter", f"zoo config {config}")


def zoo_entries(config: str | os.PathLike) -> tuple[list[str], str | None]:
    """The entry names of the zoo config ``config``, in order, and its zoo directory (None: the default).

    Raises:
        ConfigError: the config cannot be read or has no ZooEntryWriter among its trainer callbacks.
    """
    writer = writer_args(_read(config), config)
    return [str(n) for n in (writer.get("entries") or {writer.get("name"): {}})], writer.get("zoo")


def entry_config(
    config: str | os.PathLike, name: str, root: str | os.PathLike | None = None, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The LightningCLI config of entry ``name``: ``config`` with the entry's overrides, its zoo and its folder.

    Args:
        config: the zoo config.
        name: one of its entries.
        root: zoo directory (None: the writer's ``zoo``, else ``$HYPERZOO_ZOO`` or ``./zoo``).
        data: data-module arguments that replace the config's (e.g. ``{"root": ...}``).

    Raises:
        ConfigError: no such entry, no writer callback, or an override that does not fit the config.
    """
    cfg = _read(config)
    writer = writer_args(cfg, config)
    entries = writer.get("entries") or {writer.get("name"): {}}
    if name not in entries:
        raise ConfigError(f"zoo config {config} has no entry {name!r}; its entries: {', '.join(map(str, entries))}")
    zoo = str(root) if root is not None else writer.get("zoo")
    writer.update(name=name, zoo=zoo)
    for key, value in (entries[name] or {}).items():
        set_key(cfg, str(key), value)
    for key, value in (data or {}).items():
        set_key(cfg, f"data.init_args.{key}", value)
    set_key(cfg, "trainer.default_root_dir", str(zoo_dir(zoo) / ".partial" / name))
    return cfg
