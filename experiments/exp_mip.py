"""MIP vs the default hypernetwork parametrization (González Ortiz et al., ICLR 2024) on CIFAR-10 (JPEG).

A hypernet conditioned on one hyperparameter ``g in [0, 1]`` emits every weight of a small CNN (3 conv layers +
linear, ~19.5k parameters). ``g`` is the weight of a loss term: the target is trained with label smoothing
``0.3 g`` (one ``g ~ U(0, 1)`` per batch), so a single hypernet learns the whole family of smoothed classifiers.

- ``default``: ``theta = h(g)`` (raw input, no residual);
- ``mip``: ``theta = theta0 + h([cos(pi g/2), sin(pi g/2)])`` with ``theta0`` = the CNN's own initialisation;
- ablations (``--params``): ``enc_only`` (cos|sin encoding, no theta0) and ``res_only`` (raw g, with theta0).

All use the same MLP body (hidden 32, 64, LeakyReLU) and output scaling. For each optimizer (Adam, SGD with
momentum) and seed the script logs the training loss per step, the first step at which the running-mean loss drops
below ``--target-loss``, and the final test accuracy at g = 0, 0.5, 1. Results are written per run (so a killed
run resumes) to ``<out>/runs.json``; ``--plot`` draws ``experiments/plots/mip_loss.png``.

Run (from the repository root):
    python experiments/exp_mip.py --data ../shared/data/cifar10-jpeg.tar.gz --steps 1000 --seeds 0 1 2
    python experiments/exp_mip.py --data ../shared/data/cifar10-jpeg.tar.gz --steps 1000 --seeds 0 \
        --params default mip enc_only res_only --plot experiments/plots/mip_ablation.png
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.hypernets import MIPHypernet, functional_forward
from hyperzoo.lightning.mip_module import mip_cnn

# name -> (input encoding, additive theta0); enc_only / res_only ablate the two parts of MIP
VARIANTS = {
    "default": ("none", False),
    "mip": ("cos|sin", True),
    "enc_only": ("cos|sin", False),
    "res_only": ("none", True),
}
COLORS = {"default": "tab:red", "mip": "tab:blue", "enc_only": "tab:orange", "res_only": "tab:green"}


def build(param: str, seed: int) -> tuple[nn.Module, MIPHypernet]:
    torch.manual_seed(seed)
    target = mip_cnn()  # the same ~19.5k-parameter CNN as MIPModule(model="mip_cnn")
    encoding, residual = VARIANTS[param]
    theta0 = "target" if residual else "zeros"
    hnet = MIPHypernet(target, "mlp", encoding=encoding, residual=residual, theta0=theta0, hidden=(32, 64))
    return target, hnet


def run(args: argparse.Namespace, data: dict, param: str, opt_name: str, seed: int) -> dict:
    target, hnet = build(param, seed)
    if opt_name == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(hnet.parameters(), lr=args.adam_lr)
    else:
        opt = torch.optim.SGD(hnet.parameters(), lr=args.sgd_lr, momentum=0.9)
    gen = torch.Generator().manual_seed(1000 + seed)
    train_x, train_y, aug = data["train_x"], data["train_y"], data["augment"]
    losses: list[float] = []
    ema, hit, nonfinite = None, None, 0
    t0 = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(len(train_y), (args.batch_size,), generator=gen)
        x = aug(train_x[idx], train=True, generator=gen)
        y = train_y[idx]
        g = torch.rand(1, generator=gen)
        params = hnet(g)
        loss = F.cross_entropy(functional_forward(target, params, x, check=False), y, label_smoothing=0.3 * float(g))
        if not torch.isfinite(loss):
            nonfinite += 1
            losses.append(float("nan"))
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        v = loss.item()
        losses.append(v)
        ema = v if ema is None else 0.95 * ema + 0.05 * v
        if hit is None and step >= 20 and ema <= args.target_loss:
            hit = step
    train_s = time.perf_counter() - t0
    accs = {}
    with torch.no_grad():
        for gv in (0.0, 0.5, 1.0):
            params = hnet(torch.tensor([gv]))
            correct = 0
            for i in range(0, len(data["test_y"]), 500):
                xb = data["test_x"][i : i + 500]
                correct += int(
                    (functional_forward(target, params, xb, check=False).argmax(1) == data["test_y"][i : i + 500]).sum()
                )
            accs[str(gv)] = correct / len(data["test_y"])
    tail = [v for v in losses[-50:] if math.isfinite(v)]
    return {
        "param": param, "optimizer": opt_name, "seed": seed, "steps": args.steps, "losses": losses,
        "steps_to_target": hit, "final_loss_last50": sum(tail) / max(1, len(tail)), "test_acc": accs,
        "nonfinite_steps": nonfinite, "train_seconds": train_s,
    }  # fmt: skip


def steps_to(losses: list[float], target: float, start: int = 20) -> int | None:
    """First step at which the running mean (0.95 decay) of the loss is <= target (as logged during training)."""
    ema = None
    for step, v in enumerate(losses):
        if not math.isfinite(v):
            continue
        ema = v if ema is None else 0.95 * ema + 0.05 * v
        if step >= start and ema <= target:
            return step
    return None


def load_data(args: argparse.Namespace) -> dict:
    dm = CIFAR10DataModule(root=args.data, batch_size=args.batch_size, limit=args.train_images, seed=0)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.train_set is not None and dm.train_indices is not None
    train_x, train_y = dm.train_set[dm.train_indices]
    test = dm._eval_set(("test",))
    tidx = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.test_images].sort().values
    test_x, test_y = test[tidx]
    return {
        "train_x": train_x, "train_y": train_y.long(), "augment": dm.batch_augment,
        "test_x": dm.batch_augment(test_x, train=False), "test_y": test_y.long(),
    }  # fmt: skip


def plot(runs: list[dict], path: Path, target: float, params: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    opts = sorted({r["optimizer"] for r in runs})
    fig, axes = plt.subplots(1, len(opts), figsize=(6 * len(opts), 4), squeeze=False)
    for ax, opt in zip(axes[0], opts):
        for param in params:
            color = COLORS[param]
            rs = [r for r in runs if r["optimizer"] == opt and r["param"] == param]
            if not rs:
                continue
            arr = np.array([r["losses"] for r in rs], dtype=float)
            k = 25
            smooth = np.array(
                [np.convolve(np.nan_to_num(a, nan=np.nanmax(arr)), np.ones(k) / k, mode="valid") for a in arr]
            )
            steps = np.arange(smooth.shape[1]) + k - 1
            m, lo, hi = smooth.mean(0), smooth.min(0), smooth.max(0)
            ax.plot(steps, m, color=color, label=f"{param} (n={len(rs)} seeds)")
            ax.fill_between(steps, lo, hi, color=color, alpha=0.2)
        ax.axhline(target, color="gray", ls="--", lw=0.8, label=f"target loss {target}")
        ax.set_title(f"{opt}: hypernet -> small CNN, CIFAR-10 (JPEG) subset")
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (mean of 25 steps; band: seed min-max)")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="sample")
    p.add_argument("--out", default="experiments/runs/mip")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-images", type=int, default=10000)
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--adam-lr", type=float, default=1e-3)
    p.add_argument("--sgd-lr", type=float, default=1e-2)
    p.add_argument("--target-loss", type=float, default=1.7)
    p.add_argument("--optimizers", nargs="+", default=["adam", "sgd"])
    p.add_argument("--plot", default="experiments/plots/mip_loss.png")
    p.add_argument("--params", nargs="+", default=["default", "mip"], choices=sorted(VARIANTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs.json"
    runs: list[dict] = json.loads(store.read_text()) if store.exists() else []
    done = {(r["param"], r["optimizer"], r["seed"], r["steps"]) for r in runs}
    data = load_data(args)
    for seed in args.seeds:
        for opt_name in args.optimizers:
            for param in args.params:
                if (param, opt_name, seed, args.steps) in done:
                    continue
                r = run(args, data, param, opt_name, seed)
                runs.append(r)
                store.write_text(json.dumps(runs))
                print(
                    f"{opt_name:4s} {param:7s} seed {seed}: steps_to_{args.target_loss}={r['steps_to_target']} "
                    f"final_loss={r['final_loss_last50']:.3f} acc={r['test_acc']} nonfinite={r['nonfinite_steps']} "
                    f"({r['train_seconds']:.0f}s)",
                    flush=True,
                )
    runs = [r for r in runs if r["steps"] == args.steps and r["seed"] in args.seeds]
    if args.plot:
        plot(runs, Path(args.plot), args.target_loss, args.params)
    print("summary (mean over seeds):")
    for opt_name in args.optimizers:
        for param in args.params:
            rs = [r for r in runs if r["optimizer"] == opt_name and r["param"] == param]
            if not rs:
                continue
            hits = [r["steps_to_target"] for r in rs]
            hits2 = [steps_to(r["losses"], 2.0) for r in rs]
            accs = [sum(r["test_acc"].values()) / 3 for r in rs]
            acc = sum(accs) / len(accs)
            fl = sum(r["final_loss_last50"] for r in rs) / len(rs)
            print(
                f"  {opt_name:4s} {param:7s} steps_to_{args.target_loss}={hits} steps_to_2.0={hits2} "
                f"final_loss={fl:.3f} test_acc_per_seed={[round(a, 4) for a in accs]} mean_test_acc={acc:.4f}"
            )


if __name__ == "__main__":
    main()
