"""A GHN's learning curve on held-out networks and what 10x more training steps would give (a log-linear fit).

Run: python experiments/ghn_learning_curve.py --eval 0=EVAL0.json --eval 300=EVAL300.json ... \
        [--csv RUN/csv/metrics.csv --csv-offset 100] [--model resnet50] [--out experiments/plots/NAME.png]
``--eval STEPS=FILE`` is the ``hyperzoo eval-ghn --json`` output of the checkpoint after STEPS training steps; the
curve is the mean top-1 over the evaluated networks and, with ``--model``, that network's top-1. ``--csv`` adds the
``val/acc`` logged during training (steps shifted by ``--csv-offset``). The fit is top-1 = a + b * log10(steps)
over the evaluated checkpoints with steps > 0 (least squares); the projection at 10x the last step carries the
fit's 95% prediction interval. A log-linear curve is the usual empirical shape of accuracy against compute; on a
plateau it projects the plateau.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


def read_eval(path: Path, model: str | None) -> tuple[float, float | None]:
    """Mean top-1 (%) over an eval-ghn JSON's networks, and ``model``'s top-1 (%) when given."""
    results = json.loads(path.read_text())["results"]
    mean = 100 * sum(r["top1"] for r in results) / len(results)
    one = next((100 * r["top1"] for r in results if r.get("model", r["name"]) == model), None)
    if model and one is None:
        raise SystemExit(f"{path} has no result for {model!r}")
    return mean, one


def fit_loglinear(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """``(a, b, s)``: least squares of y = a + b log10(x), and the residual standard deviation (nan if < 3 points)."""
    xs = [math.log10(x) for x, _ in points]
    ys = [y for _, y in points]
    n, mx, my = len(xs), sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    s = math.sqrt(sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True)) / (n - 2)) if n > 2 else math.nan
    return a, b, s


def prediction_halfwidth(points: list[tuple[int, float]], s: float, at: float) -> float:
    """95% prediction-interval half-width of the log-linear fit at ``at`` steps."""
    xs = [math.log10(x) for x, _ in points]
    n, mx = len(xs), sum(xs) / len(xs)
    sxx = sum((x - mx) ** 2 for x in xs)
    return T95.get(n - 2, 1.96) * s * math.sqrt(1 + 1 / n + (math.log10(at) - mx) ** 2 / sxx)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval", action="append", required=True, metavar="STEPS=FILE", help="eval-ghn JSON at STEPS")
    p.add_argument("--model", default=None, help="also fit this network's top-1 (e.g. resnet50)")
    p.add_argument("--csv", type=Path, default=None, help="the run's metrics.csv (val/acc logged in training)")
    p.add_argument("--csv-offset", type=int, default=0, help="steps to add to the CSV's steps")
    p.add_argument("--offset", type=int, default=0,
                   help="steps the GHN had before step 0 (a fine-tuned GHN's pre-training): the fit and the x axis "
                   "use total steps = offset + steps, so step 0 is a point of the fit")  # fmt: skip
    p.add_argument("--goal", type=float, default=40.0, help="a horizontal line at this top-1 (%%)")
    p.add_argument("--title", default="GHN learning curve on held-out networks")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    evals = sorted((int(s) + args.offset, Path(f)) for s, f in (e.split("=", 1) for e in args.eval))
    rows = [(step, *read_eval(path, args.model)) for step, path in evals]
    print("| steps | mean top-1 | " + (f"{args.model} top-1 |" if args.model else "") + " file |")
    for (step, mean, one), (_, path) in zip(rows, evals, strict=True):
        print(f"| {step} | {mean:.2f} | " + (f"{one:.2f} | " if one is not None else "") + f"{path} |")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = [("mean of the evaluated networks", 1, "tab:blue")]
    if args.model:
        series.append((args.model, 2, "tab:red"))
    for label, col, color in series:
        pts = [(r[0], r[col]) for r in rows if r[0] > 0]
        ax.plot([max(r[0], 1) for r in rows], [r[col] for r in rows], "o", color=color, label=f"{label} (eval-ghn)")
        if len(pts) < 2:
            continue
        a, b, s = fit_loglinear(pts)
        last = pts[-1][0]  # 10x: ten times the total steps
        proj = a + b * math.log10(10 * last)
        half = prediction_halfwidth(pts, s, 10 * last) if not math.isnan(s) else math.nan
        print(f"\n{label}: top-1 = {a:.2f} + {b:.2f} * log10(steps) over {len(pts)} checkpoints "
              f"(residual sd {s:.2f}); at {10 * last} steps (10x): {proj:.1f}% (95% PI +- {half:.1f})")  # fmt: skip
        xs = [pts[0][0], 10 * last]
        ax.plot(xs, [a + b * math.log10(x) for x in xs], "--", color=color, alpha=0.7,
                label=f"fit: {b:+.1f} points per 10x steps")  # fmt: skip
        if not math.isnan(half):  # drawn within the axis; a wider interval is said in the legend
            ax.errorbar([10 * last], [proj], yerr=[min(half, 100.0)], fmt="s", color=color, capsize=4, alpha=0.7,
                        label=f"10x: {proj:.1f}% (95% PI +- {half:.0f})")  # fmt: skip
    if args.csv:
        val = sorted(
            (int(r["step"]) + 1 + args.csv_offset + args.offset, 100 * float(r["val/acc"]))
            for r in csv.DictReader(args.csv.open())
            if r.get("val/acc")
        )
        ax.plot([v[0] for v in val], [v[1] for v in val], ".-", color="tab:gray", alpha=0.6,
                label="val/acc during training (256 images)")  # fmt: skip
    ax.axhline(args.goal, color="green", ls=":", label=f"goal {args.goal:g}%")
    ax.axhline(10, color="black", ls=":", lw=0.8, label="chance")
    ax.set_ylim(0, max(60.0, args.goal + 15))
    ax.set_xscale("log")
    ax.set_xlabel(f"GHN training steps{f' (incl. {args.offset} before the family)' if args.offset else ''}, log scale")
    ax.set_ylabel("top-1 (%), predicted parameters only")
    ax.set_title(args.title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = args.out or Path("experiments/plots/ghn_learning_curve.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
