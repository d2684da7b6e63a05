"""Plots a GHN training run from its metrics.csv: training loss/accuracy (smoothed) and validation accuracy per step.

Run: python experiments/plot_ghn_training.py RUN_DIR [--out experiments/plots/NAME.png] [--title ...]
RUN_DIR is the run's default_root_dir (it holds csv/metrics.csv, written by ResumableCSVLogger).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--title", default=None)
    p.add_argument("--window", type=int, default=10, help="moving-average window over logged training points")
    args = p.parse_args()
    rows = list(csv.DictReader((args.run / "csv" / "metrics.csv").open()))
    train = sorted({int(r["step"]): r for r in rows if r.get("train/loss")}.items())
    val = sorted({int(r["step"]): float(r["val/acc"]) for r in rows if r.get("val/acc")}.items())
    steps = [s for s, _ in train]
    loss = smooth([float(r["train/loss"]) for _, r in train], args.window)
    acc = smooth([float(r["train/acc"]) for _, r in train], args.window)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    a.plot(steps, loss, color="tab:red")
    a.set_xlabel("step")
    a.set_ylabel(f"training loss (moving mean of {args.window} logged steps)")
    b.plot(steps, [100 * v for v in acc], color="tab:red", label="training batches (8 archs x images)")
    if val:
        b.plot([s for s, _ in val], [100 * v for _, v in val], "o-", color="tab:blue", label="held-out val archs")
    b.axhline(10, color="grey", ls="--", lw=0.8, label="chance")
    b.set_xlabel("step")
    b.set_ylabel("top-1 (%), predicted parameters only")
    b.legend(fontsize=8)
    fig.suptitle(args.title or args.run.name)
    fig.tight_layout()
    out = args.out or Path("experiments/plots") / f"{args.run.name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
