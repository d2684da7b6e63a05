"""Short CPU experiments and the step-time benchmark for hyperzoo.layers (LAuReL, GCR, MixtureGrowth).

    python experiments/exp_layers.py bench                  # step time of each layer vs its plain counterpart
    python experiments/exp_layers.py laurel --train 8000 --epochs 4
    python experiments/exp_layers.py gcr --train 8000 --epochs 4
    python experiments/exp_layers.py transfer --epochs 4    # train on classes 0-4, linear probe on 5-9
    python experiments/exp_layers.py growth --train 8000 --epochs 2   # epochs per phase (3 phases)
    python experiments/exp_layers.py plot                   # experiments/plots/layers_cifar10.png
    python experiments/exp_layers.py table                  # markdown tables of the finished runs

Every run appends one JSON line to experiments/logs/layers_<experiment>.jsonl and is skipped when that file already
has it (rerun the same command to resume after a kill). Data: CIFAR-10 (JPEG) from --root; training images are a
fixed random subset of the training split (--train), accuracy is top-1 on the full 10,000-image test split.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.layers import GrassmannOptimizer, laurel_param_count
from hyperzoo.layers.mixture_growth import TemplateWideResNet
from hyperzoo.lightning import ImageClassifier
from hyperzoo.lightning.gcr import GCRClassifier
from hyperzoo.lightning.growth import MixtureGrowth
from hyperzoo.lightning.schedule import WarmupCosineLR
from hyperzoo.nets import create_model

# SGD lr 0.1, Nesterov momentum 0.9, weight decay 5e-4, cosine over the run (every run of this script)
RECIPE = {
    "optimizer": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "lr_scheduler": WarmupCosineLR,
}

LOGS = Path(__file__).resolve().parent / "logs"
PLOTS = Path(__file__).resolve().parent / "plots"
MACHINE = "AMD EPYC, 2 cores, CPU, shared with other jobs"


def _done(exp: str) -> dict[str, dict[str, Any]]:
    path = LOGS / f"layers_{exp}.jsonl"
    if not path.exists():
        return {}
    return {r["run"]: r for r in map(json.loads, path.read_text().splitlines()) if r}


def _save(exp: str, row: dict[str, Any]) -> None:
    LOGS.mkdir(exist_ok=True)
    with (LOGS / f"layers_{exp}.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _trainer(epochs: int, callbacks: list[Any] | None = None) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=callbacks,
    )  # fmt: skip


@torch.no_grad()
def evaluate(net: nn.Module, dm: CIFAR10DataModule, split: str = "test", classes: list[int] | None = None) -> float:
    """Top-1 accuracy of ``net`` on a data-module split (optionally only some classes, relabelled 0..n-1)."""
    net.eval()
    ds = dm.eval_sets[split] if split != "train" else dm.train_set
    assert ds is not None
    labels = ds.labels
    idx = (
        torch.arange(len(labels)) if classes is None else torch.nonzero(torch.isin(labels, torch.tensor(classes)))[:, 0]
    )
    correct = 0
    for chunk in idx.split(500):
        images, y = ds[chunk]
        x = dm.batch_augment(images, train=False).contiguous(memory_format=torch.channels_last)
        if classes is not None:
            y = torch.searchsorted(torch.tensor(classes), y)
        correct += int((net(x).argmax(1) == y).sum())
    return correct / len(idx)


def _data(args: argparse.Namespace, limit: int | None) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(root=args.root, batch_size=128, eval_batch_size=500, limit=limit, seed=args.seed)
    dm.prepare_data()
    dm.setup()
    return dm


def _fit(module: pl.LightningModule, dm: CIFAR10DataModule, epochs: int, callbacks: list[Any] | None = None) -> float:
    trainer = _trainer(epochs, callbacks)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return time.perf_counter() - start


def _params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def train_flops_per_image(net: nn.Module) -> float:
    """Forward + backward FLOPs of one 32x32 image (torch's FLOP counter, batch of 2)."""
    net = copy.deepcopy(net).train()
    x = torch.randn(2, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / 2


# -- LAuReL --

LAUREL_RUNS = {
    "plain": "resnet20",
    "rw": "resnet20_laurel_rw",
    "rw_lr": "resnet20_laurel_rw_lr",
    "rw_lr_pa": "resnet20_laurel_rw_lr_pa",
    "extra_block": "resnet20_extra_block",
}


def run_laurel(args: argparse.Namespace) -> None:
    done = _done("laurel")
    dm = _data(args, args.train)
    base = _params(create_model("resnet20"))
    for run, model in LAUREL_RUNS.items():
        key = f"{run}/s{args.seed}"
        if key in done:
            continue
        pl.seed_everything(args.seed)
        module = ImageClassifier(model, **RECIPE)
        seconds = _fit(module, dm, args.epochs)
        n = _params(module.net)
        _save("laurel", {"run": key, "model": model, "params": n, "extra_params": n - base,
                         "extra_pct": 100 * (n - base) / base, "laurel_params": laurel_param_count(module.net),
                         "test_acc": evaluate(module.net, dm), "train_images": args.train, "epochs": args.epochs,
                         "seconds": seconds})  # fmt: skip


# -- GCR --


def _classifier(head: str, num_classes: int) -> pl.LightningModule:
    common = {**RECIPE, "num_classes": num_classes}
    if head == "linear":
        return ImageClassifier("resnet20", **common)
    return GCRClassifier("resnet20", gcr_k=int(head[1:]), gcr_gamma=25.0, gcr_overlap=True, **common)  # type: ignore[arg-type]


def run_gcr(args: argparse.Namespace) -> None:
    done = _done("gcr")
    dm = _data(args, args.train)
    for head in ("linear", "k8", "k1", "k4"):  # the paper's main setting first
        key = f"{head}/s{args.seed}"
        if key in done:
            continue
        pl.seed_everything(args.seed)
        module = _classifier(head, 10)
        seconds = _fit(module, dm, args.epochs)
        _save("gcr", {"run": key, "head": head, "params": _params(module.net), "test_acc": evaluate(module.net, dm),
                      "train_images": args.train, "epochs": args.epochs, "seconds": seconds})  # fmt: skip


def _features(
    net: nn.Module, dm: CIFAR10DataModule, split: str, classes: list[int], limit: int
) -> tuple[Tensor, Tensor]:
    ds = dm.eval_sets[split] if split != "train" else dm.train_set
    assert ds is not None
    idx = _random_subset(torch.nonzero(torch.isin(ds.labels, torch.tensor(classes)))[:, 0], limit)
    feats, ys = [], []
    net.eval()
    with torch.no_grad():
        for chunk in idx.split(500):
            images, y = ds[chunk]
            x = dm.batch_augment(images, train=False).contiguous(memory_format=torch.channels_last)
            feats.append(net.features(x))
            ys.append(torch.searchsorted(torch.tensor(classes), y))
    return torch.cat(feats), torch.cat(ys)


def _random_subset(idx: Tensor, limit: int, seed: int = 0) -> Tensor:
    """``limit`` of ``idx`` chosen at random (fixed seed; caches may be sorted by class), in increasing order."""
    perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:limit]
    return idx[perm].sort().values


def linear_probe(xtr: Tensor, ytr: Tensor, xte: Tensor, yte: Tensor, wd: float = 1e-3) -> float:
    """Multinomial logistic regression (L-BFGS, L2 penalty) on standardized frozen features; test accuracy."""
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    c = int(ytr.max()) + 1
    w = torch.zeros(xtr.shape[1], c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, ytr) + wd * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xte @ w + b).argmax(1) == yte).float().mean())


def run_transfer(args: argparse.Namespace) -> None:
    """Train on classes 0-4 (all their training images), probe frozen features on classes 5-9."""
    done = _done("transfer")
    dm = _data(args, None)
    src, dst = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    assert dm.train_set is not None
    dm.train_indices = _random_subset(
        torch.nonzero(torch.isin(dm.train_set.labels, torch.tensor(src)))[:, 0], args.train
    )
    for head in ("linear", "k8"):
        key = f"{head}/s{args.seed}"
        if key in done:
            continue
        pl.seed_everything(args.seed)
        module = _classifier(head, 5)
        seconds = _fit(module, dm, args.epochs)
        xtr, ytr = _features(module.net, dm, "train", dst, args.probe_train)
        xte, yte = _features(module.net, dm, "test", dst, 10_000)
        _save("transfer", {"run": key, "head": head, "source_test_acc": evaluate(module.net, dm, classes=src),
                           "probe_test_acc": linear_probe(xtr, ytr, xte, yte), "train_images": len(dm.train_indices),
                           "probe_train_images": len(ytr), "epochs": args.epochs, "seconds": seconds})  # fmt: skip


# -- MixtureGrowth --


def run_growth(args: argparse.Namespace) -> None:
    done = _done("growth")
    dm = _data(args, args.train)
    e = args.epochs
    steps = len(dm.train_dataloader())
    member_flops = train_flops_per_image(TemplateWideResNet(16, 2))
    grown = TemplateWideResNet(16, 2)
    grown.grow("zero")
    full_flops = train_flops_per_image(grown)
    runs = {"mixturegrowth": {"policy": "orthogonal", "new_templates": False},
            "random_new_weights": {"policy": "random", "new_templates": True}, "scratch": None}  # fmt: skip
    for run, growth in runs.items():
        key = f"{run}/s{args.seed}"
        if key in done or (args.only and run not in args.only.split(",")):
            continue
        pl.seed_everything(args.seed)
        common = dict(RECIPE)
        row: dict[str, Any] = {"run": key, "train_images": args.train, "epochs_per_phase": e, "total_epochs": 3 * e}
        if growth is None:
            module = ImageClassifier("wrn16_2", **common)
            row["seconds"] = _fit(module, dm, 3 * e)
            row["train_flops"] = full_flops * args.train * 3 * e
        else:
            module = ImageClassifier("mgwrn16_2", **common)
            probe = _GrowthProbe(dm)
            cb = MixtureGrowth(member_epochs=[e, e], growth_lr_scale=args.growth_lr_scale, noise=1.0, **growth)
            row["seconds"] = _fit(module, dm, 3 * e, [cb, probe])
            row |= probe.results
            row["train_flops"] = (2 * member_flops + full_flops) * args.train * e
        row["steps_per_epoch"] = steps
        row["params"] = _params(module.net)
        row["test_acc"] = evaluate(module.net, dm)
        _save("growth", row)


class _GrowthProbe(pl.Callback):
    """Test accuracy of each member and of their side-by-side ensemble just before growth."""

    def __init__(self, dm: CIFAR10DataModule) -> None:
        self.dm, self.results, self.seen = dm, {}, False

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = pl_module.net
        assert isinstance(net, TemplateWideResNet)
        if net.grown and not self.seen:  # runs after MixtureGrowth grew the network (callback order)
            self.seen = True
            self.results["acc_after_growth_before_training"] = evaluate(net, self.dm)
            net.train()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = pl_module.net
        assert isinstance(net, TemplateWideResNet)
        cb = next(c for c in trainer.callbacks if isinstance(c, MixtureGrowth))  # type: ignore[attr-defined]
        if trainer.current_epoch + 1 == cb.growth_epoch:
            for m in (0, 1):
                net.set_member(m)
                self.results[f"member{m}_acc"] = evaluate(net, self.dm)
            ens = copy.deepcopy(net)
            ens.grow("zero")
            self.results["ensemble_acc"] = evaluate(ens, self.dm)
            net.set_member(1)
            net.train()


# -- step-time benchmark --


def _step_fn(model: str, optimizer: str = "sgd", grow: bool = False) -> Any:
    torch.manual_seed(0)
    net = create_model(model)
    if grow:
        assert isinstance(net, TemplateWideResNet)
        net.grow("orthogonal")
    net = net.to(memory_format=torch.channels_last).train()
    if optimizer == "grassmann":
        opt: torch.optim.Optimizer = GrassmannOptimizer(net.parameters(), torch.optim.SGD, lr=0.01, momentum=0.9)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(128, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


BENCH = [  # (name, baseline spec, variant spec): spec = (model, optimizer, grow)
    ("LAuReL-RW", ("resnet20", "sgd", False), ("resnet20_laurel_rw", "sgd", False)),
    ("LAuReL-RW+LR (r=4)", ("resnet20", "sgd", False), ("resnet20_laurel_rw_lr", "sgd", False)),
    ("LAuReL-RW+LR+PA (k=3)", ("resnet20", "sgd", False), ("resnet20_laurel_rw_lr_pa", "sgd", False)),
    ("GCR k=8 + GrassmannOptimizer", ("resnet20", "sgd", False), ("resnet20_gcr8", "grassmann", False)),
    ("MixtureGrowth member (WRN-16-1)", ("wrn16_1", "sgd", False), ("mgwrn16_2", "sgd", False)),
    ("MixtureGrowth grown (WRN-16-2)", ("wrn16_2", "sgd", False), ("mgwrn16_2", "sgd", True)),
]


def run_bench(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    specs = sorted({s for _, a, b in BENCH for s in (a, b)})
    fns = {s: _step_fn(*s) for s in specs}
    times: dict[Any, list[float]] = {s: [] for s in specs}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(args.repeats):  # interleaved, so load changes hit every model alike
        for s, fn in fns.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[s].append((time.perf_counter() - start) / args.steps)
    rows = []
    for name, a, b in BENCH:
        ta, tb = statistics.median(times[a]), statistics.median(times[b])
        rows.append({"layer": name, "baseline": a[0], "variant": b[0], "baseline_ms": 1e3 * ta,
                     "variant_ms": 1e3 * tb, "ratio": tb / ta})  # fmt: skip
    out = {"machine": MACHINE, "batch": 128, "threads": 1, "repeats": args.repeats, "steps": args.steps, "rows": rows}
    LOGS.mkdir(exist_ok=True)
    (LOGS / "layers_bench.json").write_text(json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['layer']:36s} {r['baseline_ms']:8.1f} ms -> {r['variant_ms']:8.1f} ms   x{r['ratio']:.2f}")


# -- plot --


def run_plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    lau = list(_done("laurel").values())
    if lau:
        ax = axes[0]
        for r in lau:
            ax.scatter(r["extra_pct"], 100 * r["test_acc"])
            ax.annotate(r["run"].split("/")[0], (r["extra_pct"], 100 * r["test_acc"]), fontsize=8)
        ax.set(xlabel="extra parameters (%)", ylabel="test top-1 (%)", title="LAuReL, ResNet-20")
    gcr = list(_done("gcr").values())
    if gcr:
        ax = axes[1]
        ax.bar([r["head"] for r in gcr], [100 * r["test_acc"] for r in gcr])
        ax.set(
            ylabel="test top-1 (%)", title="GCR head, ResNet-20", ylim=(min(100 * r["test_acc"] for r in gcr) - 5, None)
        )
    gr = list(_done("growth").values())
    if gr:
        ax = axes[2]
        for r in gr:
            ax.scatter(r["train_flops"] / 1e12, 100 * r["test_acc"])
            ax.annotate(r["run"].split("/")[0], (r["train_flops"] / 1e12, 100 * r["test_acc"]), fontsize=8)
        ax.set(xlabel="training TFLOPs", ylabel="test top-1 (%)", title="MixtureGrowth, WRN-16-2")
    fig.suptitle("CIFAR-10 (JPEG), CPU, short schedules, 1 seed (see experiments/notes/laurel_gcr_growth.md)")
    fig.tight_layout()
    PLOTS.mkdir(exist_ok=True)
    fig.savefig(PLOTS / "layers_cifar10.png", dpi=110)


def run_table(args: argparse.Namespace) -> None:
    """Markdown tables of every finished run (for experiments/notes/laurel_gcr_growth.md and RESULTS.md)."""
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    rows = list(_done("laurel").values())
    if rows:
        print("| ResNet-20 variant | params | extra params | test top-1 (%) | train s |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['run']} | {r['params']:,} | +{r['extra_params']:,} (+{r['extra_pct']:.3f}%) | "
                  f"{pct(r['test_acc'])} | {r['seconds']:.0f} |")  # fmt: skip
    rows = list(_done("gcr").values())
    if rows:
        print("\n| ResNet-20 head | params | test top-1 (%) | train s |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['run']} | {r['params']:,} | {pct(r['test_acc'])} | {r['seconds']:.0f} |")
    rows = list(_done("transfer").values())
    if rows:
        print("\n| head (trained on classes 0-4) | source test top-1 (%) | linear probe on classes 5-9 (%) |")
        print("|---|---|---|")
        for r in rows:
            print(f"| {r['run']} | {pct(r['source_test_acc'])} | {pct(r['probe_test_acc'])} |")
    rows = list(_done("growth").values())
    if rows:
        print("\n| WRN-16-2 run | params (end) | training TFLOPs | member 0 / 1 / side-by-side (%) "
              "| right after growth (%) | test top-1 (%) | train s |\n|---|---|---|---|---|---|---|")  # fmt: skip
        for r in rows:
            mem = (f"{pct(r['member0_acc'])} / {pct(r['member1_acc'])} / {pct(r['ensemble_acc'])}"
                   if "member0_acc" in r else "-")  # fmt: skip
            after = pct(r["acc_after_growth_before_training"]) if "acc_after_growth_before_training" in r else "-"
            print(f"| {r['run']} | {r['params']:,} | {r['train_flops'] / 1e12:.2f} | {mem} | {after} | "
                  f"{pct(r['test_acc'])} | {r['seconds']:.0f} |")  # fmt: skip
    bench = LOGS / "layers_bench.json"
    if bench.exists():
        b = json.loads(bench.read_text())
        print(f"\nStep time, batch {b['batch']}, {b['threads']} thread, median of {b['repeats']} x {b['steps']} steps")
        print("| layer | baseline | ms/step | variant | ms/step | ratio |\n|---|---|---|---|---|---|")
        for r in b["rows"]:
            print(f"| {r['layer']} | {r['baseline']} | {r['baseline_ms']:.0f} | {r['variant']} | {r['variant_ms']:.0f} "
                  f"| {r['ratio']:.2f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=["bench", "laurel", "gcr", "transfer", "growth", "plot", "table"])
    p.add_argument("--root", default="../shared/data/cifar10-jpeg.tar.gz")
    p.add_argument("--train", type=int, default=8000, help="training images (fixed random subset)")
    p.add_argument("--epochs", type=int, default=4, help="epochs (growth: per phase)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--probe-train", type=int, default=5000, help="transfer: images of classes 5-9 for the probe")
    p.add_argument("--growth-lr-scale", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--logs", default=str(LOGS), help="where the result files go")
    p.add_argument("--only", default="", help="growth: comma-separated runs to do (default: all)")
    args = p.parse_args()
    globals()["LOGS"] = Path(args.logs)
    torch.set_num_threads(1)
    {"bench": run_bench, "laurel": run_laurel, "gcr": run_gcr, "transfer": run_transfer, "growth": run_growth,
     "plot": run_plot, "table": run_table}[args.experiment](args)  # fmt: skip


if __name__ == "__main__":
    main()
