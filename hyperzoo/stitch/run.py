"""``hyperzoo stitch fit`` and ``select``: build an SN-Net from zoo anchors, initialise, train, evaluate, choose.

Config (YAML)::

    anchors: [r20x1-s0, r32x1-s0, r56x1-s0]   # zoo entries (same label space)
    zoo: null                          # zoo directory ($HYPERZOO_ZOO or ./zoo)
    data: {root: ../shared/data/cifar10-jpeg.tar.gz, limit: 10000, batch_size: 128}
    window: 1                          # entries around the nearest-interpolated block
    pairs: nearest                     # or all
    init: ls                           # ls (closed form) or random
    ls_batches: 4
    ridge: 0.0
    train: {max_epochs: 1, lr: 0.01, anchor_lr_scale: 0.1, seed: 0, freeze_bn: true}
    test_limit: 2000                   # test images per configuration (null: all 10,000)
    out: runs/stitch_cifar10

``fit`` writes ``<out>/configs.json`` (every configuration: MACs, FLOPs, parameters, test accuracy, Pareto flag),
``<out>/snnet.safetensors`` + ``snnet.json`` and ``<out>/pareto.png``. ``hyperzoo stitch fit --init random`` and
``--epochs 0`` run the ablations (random init, LS init alone) from the same config.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file
from torch import Tensor

from hyperzoo.errors import ConfigError
from hyperzoo.io import atomic_write, check_output, write_text_atomic
from hyperzoo.stitch.select import load_table, pareto_front, plot_front, select
from hyperzoo.stitch.snnet import SNNet, init_stitches_ls

__all__ = ["KEYS", "build_snnet", "evaluate_configs", "run_fit", "run_select"]

OUTPUTS = ("configs.json", "snnet.safetensors", "snnet.json", "pareto.png")
KEYS = {"anchors", "zoo", "data", "window", "pairs", "init", "ls_batches", "ridge", "train", "test_limit", "out"}


def build_snnet(cfg: dict[str, Any]) -> SNNet:
    """Loads the anchors from the zoo and builds the SN-Net (no initialisation of the stitches yet)."""
    from hyperzoo.zoo.store import load_meta, load_model

    names = cfg.get("anchors") or []
    if len(names) < 2:
        raise ConfigError(f"stitch config needs at least two 'anchors' (zoo entries), got {names}")
    metas = [load_meta(n, cfg.get("zoo")) for n in names]
    classes = {tuple(m.get("classes") or range(m.get("num_classes", 10))) for m in metas}
    if len(classes) > 1:
        raise ConfigError(f"anchors {names} were trained on different label sets; SN-Net needs one label space")
    anchors = [load_model(n, cfg.get("zoo")) for n in names]
    return SNNet(anchors, window=int(cfg.get("window", 1)), pairs=str(cfg.get("pairs", "nearest")))


@torch.no_grad()
def evaluate_configs(snnet: SNNet, data: list[tuple[Tensor, Tensor]]) -> list[dict[str, Any]]:
    """Test accuracy, MACs, FLOPs and parameters of every configuration; Pareto flags."""
    snnet.eval()
    rows = []
    for i, cfg in enumerate(snnet.configs):
        right = total = 0
        for x, y in data:
            right += int((snnet(x, i).argmax(1) == y).sum())
            total += len(y)
        row = snnet.describe(i)
        row["acc"] = right / max(1, total)
        row["anchor"] = cfg.is_anchor
        rows.append(row)
    on_front = {r["id"] for r in pareto_front(rows)}
    for r in rows:
        r["pareto"] = r["id"] in on_front
    return rows


def _load_config(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"stitch config {path} not found")
    cfg = yaml.safe_load(p.read_text()) or {}
    bad = set(cfg) - KEYS
    if bad:
        raise ConfigError(f"unknown keys {sorted(bad)} in stitch config {path}; allowed: {sorted(KEYS)}")
    _check_init(cfg.get("init", "ls"), path)
    return cfg


def _check_init(init: str, path: str) -> None:
    if init not in ("ls", "random"):
        raise ConfigError(f"init must be 'ls' or 'random', got {init!r} (config {path})")


def run_fit(
    config: str,
    out: str | None = None,
    init: str | None = None,
    epochs: float | None = None,
    anchor_lr_scale: float | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """The ``hyperzoo stitch fit`` command; ``init``, ``epochs`` and ``anchor_lr_scale`` override the config's.

    An output folder that already holds a run's files is refused unless ``overwrite``.
    """
    import functools

    import lightning.pytorch as pl

    from hyperzoo.lightning.schedule import WarmupCosineLR
    from hyperzoo.lightning.stitch_module import StitchModule
    from hyperzoo.merge.run import data_batches, test_data
    from hyperzoo.zoo.train import ClassSubsetCIFAR10

    cfg = _load_config(config)
    if init is not None:
        cfg["init"] = init
    overrides = {"max_epochs": epochs, "anchor_lr_scale": anchor_lr_scale}
    for key, value in overrides.items():
        if value is not None and value < 0:
            zero = "evaluates the initialised stitches" if key == "max_epochs" else "freezes the anchors"
            raise ConfigError(f"train.{key} must be >= 0 (0 {zero}), got {value}")
    cfg["train"] = {**(cfg.get("train") or {}), **{k: v for k, v in overrides.items() if v is not None}}
    _check_init(cfg.get("init", "ls"), config)
    data = {"root": "sample", "batch_size": 128, **(cfg.get("data") or {})}
    out_dir = Path(out or cfg.get("out") or "runs/stitch")
    for fname in OUTPUTS:  # before the work, not after it
        check_output(out_dir / fname, overwrite, "--out")
    train = {
        "max_epochs": 1,
        "lr": 0.01,
        "anchor_lr_scale": 0.1,
        "seed": 0,
        "freeze_bn": True,
        **(cfg.get("train") or {}),
    }
    pl.seed_everything(int(train["seed"]))
    snnet = build_snnet(cfg)
    t0 = time.perf_counter()
    if cfg.get("init", "ls") == "ls":
        batches = data_batches(data["root"], int(data["batch_size"]), int(cfg.get("ls_batches", 4)))
        init_stitches_ls(snnet, batches, int(cfg.get("ls_batches", 4)), float(cfg.get("ridge", 0.0)))
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    epochs = float(train.pop("max_epochs"))
    module = StitchModule(
        snnet,
        optimizer=functools.partial(
            torch.optim.SGD, lr=float(train.pop("lr")), momentum=0.9, nesterov=True, weight_decay=5e-4
        ),
        lr_scheduler=WarmupCosineLR,
        anchor_lr_scale=float(train.pop("anchor_lr_scale")),
        seed=int(train.pop("seed")),
        freeze_bn=bool(train.pop("freeze_bn", True)),
    )
    if epochs > 0:
        dm = ClassSubsetCIFAR10(classes=None, **{"seed": 0, **data})
        trainer = pl.Trainer(
            max_epochs=int(epochs),
            accelerator="auto",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            **train,
        )
        trainer.fit(module, datamodule=dm)
    train_s = time.perf_counter() - t0
    snnet = module.snnet.cpu()
    rows = evaluate_configs(snnet, test_data(data["root"], cfg.get("test_limit")))
    meta = {"config": cfg, "init_s": init_s, "train_s": train_s, "num_configs": len(rows)}
    write_text_atomic(out_dir / "configs.json", json.dumps({"meta": meta, "configs": rows}, indent=1) + "\n")
    with atomic_write(out_dir / "snnet.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in snnet.state_dict().items()}, str(tmp))
    write_text_atomic(out_dir / "snnet.json", json.dumps({**meta, "keys": [c.key for c in snnet.configs]}, indent=1))
    plot_front(rows, out_dir / "pareto.png", title=f"SN-Net {' + '.join(cfg['anchors'])}")
    front = pareto_front(rows)
    print(f"stitch: {len(rows)} configurations, {len(front)} on the Pareto front; table {out_dir / 'configs.json'}")
    for r in front:
        print(f"  {r['key']:18s} {r['flops'] / 1e6:9.1f} MFLOPs  acc {100 * r['acc']:6.2f}")
    return rows


def run_select(table: str, budget_flops: float) -> dict[str, Any]:
    """The ``hyperzoo stitch select`` command: best configuration within the budget."""
    rows = load_table(table)
    best = select(rows, budget_flops)
    print(json.dumps(best))
    return best
