"""SN-Net runs through LightningCLI: ``hyperzoo fit --config experiments/configs/stitch_cifar10.yaml``.

A stitch config is an ordinary LightningCLI config: a :class:`~hyperzoo.lightning.stitch_module.StitchModule` whose
``snnet`` is a :class:`ZooSNNet` (anchors named by zoo entry), a CIFAR-10 data module, and a :class:`StitchRun`
callback, which initialises the stitching layers (least squares, ``init: ls``, or as constructed, ``init: random``)
before training and afterwards evaluates every configuration on the test split and writes, to ``out``
(``{root}``: the trainer's ``default_root_dir``):

``configs.json`` (every configuration: MACs, FLOPs, parameters, test accuracy, Pareto flag),
``snnet.safetensors`` + ``snnet.json`` and ``pareto.png``.

``hyperzoo stitch fit --config ...`` (:func:`hyperzoo.lightning.stitch_fit.run_fit`, in the Lightning layer) runs
the same ``fit`` with ``--out``, ``--init``, ``--epochs`` (``0``: evaluate the initialised stitches) and
``--anchor-lr-scale`` overrides (the ablations; the config they make: :func:`fit_config`); ``hyperzoo stitch
select`` (:func:`run_select`) picks a configuration under a FLOPs budget.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from safetensors.torch import save_file
from torch import Tensor

from hyperzoo.config_yaml import callback_args, read_config, set_key
from hyperzoo.errors import ConfigError
from hyperzoo.io import atomic_write, check_output, write_text_atomic
from hyperzoo.stitch.select import load_table, pareto_front, plot_front, select
from hyperzoo.stitch.snnet import SNNet, init_stitches_ls

__all__ = ["OUTPUTS", "StitchRun", "ZooSNNet", "build_snnet", "evaluate_configs", "fit_config", "run_select"]

#: the files a stitch run writes to its output folder
OUTPUTS = ("configs.json", "snnet.safetensors", "snnet.json", "pareto.png")


class ZooSNNet(SNNet):
    """An :class:`~hyperzoo.stitch.snnet.SNNet` whose anchors are zoo entries, named in the config.

    Args:
        anchors: zoo entry names (at least two, trained on the same label set).
        zoo: zoo directory (None: ``$HYPERZOO_ZOO`` or ``./zoo``).
        window: entries around the nearest-interpolated block.
        pairs: ``nearest`` (neighbours in cost order) or ``all``.
        input_size: image side used for shapes and compute.

    Raises:
        ConfigError: fewer than two anchors, or anchors trained on different label sets.
    """

    def __init__(
        self,
        anchors: list[str],
        zoo: str | None = None,
        window: int = 1,
        pairs: str = "nearest",
        input_size: int = 32,
    ) -> None:
        from hyperzoo.zoo.store import load_meta, load_model

        names = list(anchors or [])
        if len(names) < 2:
            raise ConfigError(f"a stitch config needs at least two anchors (zoo entries), got {names}")
        metas = [load_meta(n, zoo) for n in names]
        classes = {tuple(m.get("classes") or range(m.get("num_classes", 10))) for m in metas}
        if len(classes) > 1:
            raise ConfigError(f"anchors {names} were trained on different label sets; SN-Net needs one label space")
        super().__init__([load_model(n, zoo) for n in names], window=int(window), input_size=input_size, pairs=pairs)
        self.anchor_names, self.zoo, self.window, self.pairs = names, zoo, int(window), pairs


def build_snnet(cfg: dict[str, Any]) -> SNNet:
    """The SN-Net of ``anchors`` (zoo entries) in ``zoo``, with ``window`` and ``pairs`` (stitches not initialised)."""
    return ZooSNNet(
        list(cfg.get("anchors") or []), cfg.get("zoo"), int(cfg.get("window", 1)), str(cfg.get("pairs", "nearest"))
    )


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


class StitchRun(pl.Callback):
    """Initialises the stitching layers before a ``fit``; evaluates every configuration and writes the outputs after.

    Args:
        init: ``ls`` (closed-form least squares on ``ls_batches`` un-augmented training batches of the data module's
            root and batch size) or ``random`` (the layers as constructed).
        ls_batches: batches of the least-squares pass.
        ridge: ridge penalty of the least-squares fit.
        test_limit: test images per configuration (a fixed random subset; None: the whole test split).
        out: output folder (``{root}``: the trainer's ``default_root_dir``).
        overwrite: replace the files of an earlier run in ``out`` (else refused before any work).

    Raises:
        ConfigError: an unknown ``init``, negative ``ls_batches``/``ridge``, or outputs that exist already.
    """

    def __init__(
        self,
        init: Literal["ls", "random"] = "ls",
        ls_batches: int = 4,
        ridge: float = 0.0,
        test_limit: int | None = 2000,
        out: str = "{root}",
        overwrite: bool = False,
    ) -> None:
        if init not in ("ls", "random"):
            raise ConfigError(f"StitchRun init must be 'ls' or 'random', got {init!r}")
        if ls_batches < 1 or ridge < 0 or (test_limit is not None and test_limit < 1):
            raise ConfigError(
                f"StitchRun needs ls_batches >= 1, ridge >= 0 and test_limit >= 1 or null; got {ls_batches}, "
                f"{ridge}, {test_limit}"
            )
        self.init, self.ls_batches, self.ridge, self.test_limit = init, ls_batches, ridge, test_limit
        self.out, self.overwrite = out, overwrite
        self.init_s = 0.0
        self._t0 = 0.0

    def _out(self, trainer: pl.Trainer) -> Path:
        return Path(self.out.replace("{root}", str(trainer.default_root_dir)))

    @staticmethod
    def _snnet(pl_module: pl.LightningModule) -> SNNet:
        snnet = getattr(pl_module, "snnet", None)
        if not isinstance(snnet, SNNet):
            raise ConfigError(f"StitchRun needs a StitchModule (with an `snnet`), got {type(pl_module).__name__}")
        return snnet

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Checks the outputs (before the work, not after it) and initialises the stitches (before the optimizer)."""
        if stage != "fit":
            return
        snnet = self._snnet(pl_module)
        for fname in OUTPUTS:
            check_output(self._out(trainer) / fname, self.overwrite, "--out")
        t0 = time.perf_counter()
        if self.init == "ls":
            from hyperzoo.data.fixed_batches import train_batches

            dm: Any = trainer.datamodule  # type: ignore[attr-defined]
            batches = train_batches(dm.root, int(dm.batch_size), self.ls_batches)
            init_stitches_ls(snnet, batches, self.ls_batches, self.ridge)
        self.init_s = time.perf_counter() - t0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluates every configuration on the test split; writes the table, the weights and the Pareto plot."""
        if getattr(trainer, "fast_dev_run", False) or not trainer.is_global_zero:
            return
        from hyperzoo.data.fixed_batches import test_batches

        train_s = time.perf_counter() - self._t0
        dm: Any = trainer.datamodule  # type: ignore[attr-defined]
        snnet = self._snnet(pl_module).cpu()
        rows = evaluate_configs(snnet, test_batches(dm.root, self.test_limit))
        out = self._out(trainer)
        config = self._config(trainer, pl_module, dm, out)
        meta = {"config": config, "init_s": self.init_s, "train_s": train_s, "num_configs": len(rows)}
        write_text_atomic(out / "configs.json", json.dumps({"meta": meta, "configs": rows}, indent=1) + "\n")
        with atomic_write(out / "snnet.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in snnet.state_dict().items()}, str(tmp))
        keys = [c.key for c in snnet.configs]
        write_text_atomic(out / "snnet.json", json.dumps({**meta, "keys": keys}, indent=1, default=str))
        plot_front(rows, out / "pareto.png", title=f"SN-Net {' + '.join(config['anchors'])}")
        front = pareto_front(rows)
        print(f"stitch: {len(rows)} configurations, {len(front)} on the Pareto front; table {out / 'configs.json'}")
        for r in front:
            print(f"  {r['key']:18s} {r['flops'] / 1e6:9.1f} MFLOPs  acc {100 * r['acc']:6.2f}")

    def _config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, dm: Any, out: Path) -> dict[str, Any]:
        """The run's settings, recorded next to its results."""
        hp: Any = pl_module.hparams
        snnet = self._snnet(pl_module)
        train = {"max_epochs": trainer.max_epochs, "seed": int(os.environ.get("PL_GLOBAL_SEED", 0))}
        train.update({k: hp[k] for k in ("lr", "anchor_lr_scale", "seed", "freeze_bn") if k in hp})
        return {
            "anchors": list(getattr(snnet, "anchor_names", [])) or [f"anchor{i}" for i in range(len(snnet.anchors))],
            "zoo": getattr(snnet, "zoo", None),
            "data": {"root": dm.root, "batch_size": int(dm.batch_size), "limit": getattr(dm, "limit", None)},
            "window": getattr(snnet, "window", None),
            "pairs": getattr(snnet, "pairs", None),
            "init": self.init,
            "ls_batches": self.ls_batches,
            "ridge": self.ridge,
            "train": train,
            "test_limit": self.test_limit,
            "out": str(out),
        }


def fit_config(
    config: str | os.PathLike,
    out: str | None = None,
    init: str | None = None,
    epochs: float | None = None,
    anchor_lr_scale: float | None = None,
    overwrite: bool = False,
) -> tuple[dict[str, Any], Path]:
    """The stitch config ``config`` with the overrides of ``hyperzoo stitch fit``, and the run's output folder.

    Checks the outputs before anything is loaded (:class:`StitchRun` checks again before the work in any ``fit``).

    Args:
        config: a stitch config (LightningCLI, with a :class:`StitchRun` callback).
        out: output folder (sets ``trainer.default_root_dir`` and the callback's ``out``).
        init: ``ls`` or ``random``, overrides the callback's.
        epochs: overrides ``trainer.max_epochs`` (0: evaluate the initialised stitches).
        anchor_lr_scale: overrides the model's (0 freezes the anchors).
        overwrite: replace the files of an earlier run in the output folder (else refused before any work).

    Raises:
        ConfigError: a negative ``epochs`` or ``anchor_lr_scale``, a config without a StitchRun callback, or
            outputs that exist already.
    """
    for name, value in (("epochs", epochs), ("anchor_lr_scale", anchor_lr_scale)):
        if value is not None and value < 0:
            zero = "evaluates the initialised stitches" if name == "epochs" else "freezes the anchors"
            raise ConfigError(f"{name}={value}: must be >= 0 (0 {zero})")
    cfg = read_config(config, "stitch config")
    run = callback_args(cfg, "StitchRun", f"stitch config {config}")
    if init is not None:
        run["init"] = init
    if overwrite:
        run["overwrite"] = True
    if out is not None:
        set_key(cfg, "trainer.default_root_dir", out)
        run["out"] = out
    if epochs is not None:
        set_key(cfg, "trainer.max_epochs", int(epochs))
    if anchor_lr_scale is not None:
        set_key(cfg, "model.init_args.anchor_lr_scale", float(anchor_lr_scale))
    root = str((cfg.get("trainer") or {}).get("default_root_dir") or "runs/default")
    out_dir = Path(str(run.get("out", "{root}")).replace("{root}", root))
    for fname in OUTPUTS:  # before loading the anchors
        check_output(out_dir / fname, bool(run.get("overwrite")), "--out")
    return cfg, out_dir


def run_select(table: str, budget_flops: float) -> dict[str, Any]:
    """The ``hyperzoo stitch select`` command: best configuration within the budget."""
    rows = load_table(table)
    best = select(rows, budget_flops)
    print(json.dumps(best))
    return best
