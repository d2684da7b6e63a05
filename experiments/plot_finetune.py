"""Predicted init vs default init: curves and a table from the runs of ``experiments/finetune_ghn_init.sh``.

Run: python experiments/plot_finetune.py resnet20 [--runs experiments/runs/finetune] [--out experiments/plots/NAME.png]
Reads ``RUNS/MODEL/INIT/seedS/csv/metrics.csv`` (validation top-1 per logged step; INIT is ``ghn``, ``default`` and,
when run, ``ghn_norms`` and ``ghn_orth``), prints a markdown table (top-1 at each validation step, mean +- std over
the seeds every arm finished, and each predicted arm minus default, paired by seed, with a 95% t-interval), and
plots top-1 against training step, one line per run and the seed mean.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

#: two-sided 95% Student t quantiles by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def val_curve(run: Path, final_step: int | None = None) -> dict[int, float]:
    """``{step: val top-1}`` of a run (the last value logged at each step), with its ``test/acc`` at ``final_step``."""
    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    curve = {int(r["step"]) + 1: float(r["val/acc"]) for r in rows if r.get("val/acc")}
    tests = [float(r["test/acc"]) for r in rows if r.get("test/acc")]
    if final_step is not None and tests:
        curve[final_step] = tests[-1]
    return curve


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (nan for one value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, math.nan
    return m, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def sd(values: list[float]) -> str:
    """`` +- std`` of ``values`` (empty for one value)."""
    return f" +- {statistics.stdev(values):.2f}" if len(values) > 1 else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="resnet20 or resnet50 (a folder under --runs)")
    p.add_argument("--runs", type=Path, default=Path("experiments/runs/finetune"))
    p.add_argument("--out", type=Path, default=None, help="plot file (default experiments/plots/finetune_MODEL.png)")
    p.add_argument(
        "--final-step",
        type=int,
        default=None,
        help="put each run's test/acc (its last weights on the test split) at this step (resnet20: 391)",
    )
    args = p.parse_args()
    arms = {"ghn": ("tab:blue", "predicted init (GHN)"), "default": ("tab:gray", "default init"),
            "ghn_norms": ("tab:orange", "predicted, default-init norms"),
            "ghn_orth": ("tab:green", "predicted, GHN-orth")}  # fmt: skip
    curves: dict[str, dict[str, dict[int, float]]] = {}
    for init in arms:
        for run in sorted((args.runs / args.model / init).glob("seed*")):
            if (run / "done").exists():
                curves.setdefault(init, {})[run.name] = val_curve(run, args.final_step)
    if "default" not in curves or len(curves) < 2:
        raise SystemExit(f"no finished pair of runs under {args.runs / args.model} (default/seedS and ghn*/seedS)")
    seeds = sorted(set.intersection(*(set(c) for c in curves.values())))
    if not seeds:
        raise SystemExit(f"no seed finished by every arm ({', '.join(curves)}) under {args.runs / args.model}")
    steps = sorted(set.intersection(*(set(curves[i][s]) for i in curves for s in seeds)))
    present = [a for a in arms if a in curves]
    others = [a for a in present if a != "default"]
    print(f"{args.model}: {len(seeds)} seeds ({', '.join(seeds)}), validation top-1 (%)\n")
    print("| step | " + " | ".join(arms[a][1] for a in present) + " | "
          + " | ".join(f"{arms[a][1]} - default (95% CI)" for a in others) + " |")  # fmt: skip
    print("|---:" * (1 + len(present) + len(others)) + "|")
    for step in steps:
        vals = {a: [100 * curves[a][s][step] for s in seeds] for a in present}
        cells = [f"{statistics.fmean(vals[a]):.2f}{sd(vals[a])}" for a in present]
        for a in others:
            diff, half = mean_ci([x - y for x, y in zip(vals[a], vals["default"], strict=True)])
            cells.append(f"{diff:+.2f} (+- {half:.2f})")
        print(f"| {step} | " + " | ".join(cells) + " |")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for init in present:
        color, label = arms[init]
        for s in seeds:
            c = curves[init][s]
            ax.plot(steps, [100 * c[t] for t in steps], color=color, alpha=0.3, lw=1)
        ax.plot(steps, [statistics.fmean(100 * curves[init][s][t] for s in seeds) for t in steps], color=color,
                lw=2, marker="o", label=f"{label}, mean of {len(seeds)} seeds")  # fmt: skip
    ax.set_xlabel("training step")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(f"{args.model} on CIFAR-10 (JPEG): predicted vs default init, same recipe", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    out = args.out or Path("experiments/plots") / f"finetune_{args.model}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"\nplot: {out}")


if __name__ == "__main__":
    main()
