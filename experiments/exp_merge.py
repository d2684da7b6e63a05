"""Merge experiments on the CIFAR-10 zoo: same labels (x1, x2) and disjoint label halves.

    OMP_NUM_THREADS=1 python experiments/exp_merge.py --pair r20x1-s0 r20x1-s1 --test-limit 5000 \
        --out experiments/logs/merge_x1.json
    OMP_NUM_THREADS=1 python experiments/exp_merge.py --pair r20x1-c0to4 r20x1-c5to9 --test-limit 5000 \
        --out experiments/logs/merge_halves.json

Every method sees the same statistics batches (``--batches`` x ``--batch-size`` training images, no augmentation)
and the same test images (a fixed random subset of ``--test-limit`` test images). Rows: both endpoints, the
ensemble, plain averaging (with and without BN reset), weight matching (Git Re-Basin) with and without BN reset,
activation matching + BN reset without least squares, and PLeaS at widths 1.0, 1.25, 1.5, 2.0. Results are
resumable: rows already in ``--out`` are skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hyperzoo.merge.baselines import Ensemble, merge_models
from hyperzoo.merge.compute import count_macs, count_params
from hyperzoo.merge.matching import activation_matching
from hyperzoo.merge.run import accuracies, data_batches, predict, test_data
from hyperzoo.merge.spec import derive_spec
from hyperzoo.zoo.store import load_meta, load_model

RUNS = [
    ("average, no BN reset", "average", 1.0, {"bn_batches": 0}),
    ("average + BN reset", "average", 1.0, {}),
    ("Git Re-Basin (weight matching), no BN reset", "rebasin", 1.0, {"bn_batches": 0}),
    ("Git Re-Basin + BN reset", "rebasin", 1.0, {}),
    ("activation matching + BN reset (no LS)", "pleas", 1.0, {"least_squares": False}),
    ("PLeaS w1.0", "pleas", 1.0, {}),
    ("PLeaS w1.25", "pleas", 1.25, {}),
    ("PLeaS w1.5", "pleas", 1.5, {}),
    ("PLeaS w2.0", "pleas", 2.0, {}),
    ("PLeaS-weight w1.0", "pleas_weight", 1.0, {}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", nargs=2, help="two zoo entries (not needed with --plot-combined)")
    p.add_argument("--zoo", default=None)
    p.add_argument("--data-root", default="../shared/data/cifar10-jpeg.tar.gz")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--test-limit", type=int, default=5000)
    p.add_argument("--ridge", type=float, default=1e-3)
    p.add_argument("--out", help="result file (JSON; rows already in it are skipped)")
    p.add_argument("--plot", default=None, help="also plot accuracy against compute to this PNG")
    p.add_argument("--plot-only", action="store_true", help="only plot an existing --out")
    p.add_argument("--only", nargs="*", default=None, help="run only the rows with these names (parallel runs)")
    p.add_argument("--merge-into", nargs="*", default=None, help="combine these result files into --out")
    p.add_argument(
        "--plot-combined",
        nargs="*",
        default=None,
        help="plot these result files (e.g. the x1 and x2 pairs) in one figure, also relative to the better endpoint",
    )
    args = p.parse_args()
    if args.plot_combined:
        if not args.plot:
            p.error("--plot-combined needs --plot PNG")
        plot_combined([json.loads(Path(f).read_text()) for f in args.plot_combined], args.plot)
        return
    if not args.out or (not args.pair and not args.merge_into and not args.plot_only):
        p.error("--out is required, and --pair unless --merge-into or --plot-only is given")
    if args.merge_into:
        parts = [json.loads(Path(f).read_text()) for f in args.merge_into if Path(f).is_file()]
        order = {name: i for i, (name, *_) in enumerate(RUNS)}
        rows = [r for part in parts for r in part["rows"]]
        rows = list({r["name"]: r for r in rows}.values())
        rows.sort(key=lambda r: order.get(r["name"], -1))
        Path(args.out).write_text(json.dumps({**parts[0], "rows": rows}, indent=1))
        if args.plot:
            plot(json.loads(Path(args.out).read_text()), args.plot)
        return
    if args.plot_only:
        plot(json.loads(Path(args.out).read_text()), args.plot)
        return
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    done = {r["name"] for r in rows}
    ma, mb = (load_meta(n, args.zoo) for n in args.pair)
    ca, cb = ma["classes"], mb["classes"]
    labels = "same" if ca == cb else "different"
    a, b = (load_model(n, args.zoo) for n in args.pair)
    batches = data_batches(args.data_root, args.batch_size, args.batches)
    test = test_data(args.data_root, args.test_limit)
    spec = derive_spec(a)
    x1 = torch.zeros(1, 3, 32, 32)
    single = count_macs(a, x1)

    def record(name: str, model: torch.nn.Module, extra: dict, two_heads: bool) -> None:
        t = time.perf_counter()
        acc = accuracies(*predict(model, test), ca, cb if two_heads else None)
        row = {
            "name": name,
            **acc,
            "macs_ratio": count_macs(model, x1) / single,
            "params_ratio": count_params(model) / count_params(a),
            "eval_s": time.perf_counter() - t,
            **extra,
        }
        rows.append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"pair": args.pair, "labels": labels, "args": vars(args), "rows": rows}, indent=1))
        print(json.dumps(row), flush=True)

    if args.only is not None:  # the endpoint rows are names too ("endpoint A", "ensemble (A+B logits)", ...)
        every = {name for name, *_ in RUNS} | {"endpoint A", "endpoint B", "ensemble (A+B logits)"}
        done |= (every | {"endpoints (A and B side by side)"}) - set(args.only)
    if labels == "same":
        for name, m in (("endpoint A", a), ("endpoint B", b)):
            if name not in done:
                record(name, m, {}, False)
        if "ensemble (A+B logits)" not in done:
            record("ensemble (A+B logits)", Ensemble(a, b), {}, False)
    else:
        if "endpoints (A and B side by side)" not in done:
            record("endpoints (A and B side by side)", Ensemble(a, b, concat=True), {}, True)
    cache: dict[str, tuple] = {}
    for name, method, width, kw in RUNS:
        if name in done:
            continue
        if method == "pleas" and "act" not in cache:  # matching does not depend on the width: once per pair
            cache["act"] = activation_matching(a, b, spec, batches, args.batches)
        r = merge_models(
            a,
            b,
            method,
            width,
            batches,
            labels,
            args.batches,
            args.batches,
            kw.get("bn_batches", args.batches),
            args.ridge,
            spec=spec,
            least_squares=kw.get("least_squares", True),
            matching=cache.get("act") if method == "pleas" else None,
        )
        info = {
            k: v
            for k, v in r.info.items()
            if k.endswith("_s") or k in ("merged_fraction", "least_squares", "matching_cached")
        }
        record(name, r.model, info, labels == "different")
    if args.plot:
        plot(json.loads(out.read_text()), args.plot)


def plot(result: dict, path: str) -> None:
    """Test accuracy against executed MACs (relative to one model) for every row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    key = "acc" if result["labels"] == "same" else "joint"
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in rows:
        pleas = r["name"].startswith("PLeaS w")
        ax.scatter(r["macs_ratio"], 100 * r[key], marker="o" if pleas else "s", c="C0" if pleas else "C1", s=25)
        ax.annotate(
            r["name"].replace(" (weight matching)", ""),
            (r["macs_ratio"], 100 * r[key]),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    front = sorted((r for r in rows if r["name"].startswith("PLeaS w")), key=lambda r: r["macs_ratio"])
    ax.plot([r["macs_ratio"] for r in front], [100 * r[key] for r in front], "-", c="C0", lw=1)
    ax.set_xlabel("executed MACs / one model's MACs (dense merged network)")
    ax.set_ylabel(("test accuracy" if key == "acc" else "joint 10-way accuracy") + " (%)")
    ax.set_title(f"CIFAR-10 (JPEG): {' + '.join(result['pair'])}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_combined(results: list[dict], path: str) -> None:
    """Several pairs in one figure: accuracy as a fraction of the better endpoint against executed MACs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {"average + BN reset": "s", "Git Re-Basin + BN reset": "^", "activation matching + BN reset (no LS)": "D"}
    for k, result in enumerate(results):
        rows = {r["name"]: r for r in result["rows"]}
        key = "acc" if result["labels"] == "same" else "joint"
        best = max(rows[n][key] for n in ("endpoint A", "endpoint B") if n in rows) if key == "acc" else 1.0
        label = " + ".join(result["pair"])
        pleas = sorted((r for r in rows.values() if r["name"].startswith("PLeaS w")), key=lambda r: r["macs_ratio"])
        for ax, norm in zip(axes, (1.0, best), strict=True):
            ax.plot(
                [r["macs_ratio"] for r in pleas],
                [100 * r[key] / norm for r in pleas],
                "o-",
                c=f"C{k}",
                label=f"PLeaS, {label}",
            )
            for name, mk in markers.items():
                if name in rows:
                    ax.scatter(
                        rows[name]["macs_ratio"],
                        100 * rows[name][key] / norm,
                        marker=mk,
                        c=f"C{k}",
                        s=30,
                        label=f"{name}, {label}",
                    )
            if "ensemble (A+B logits)" in rows:
                ax.scatter(
                    2.0,
                    100 * rows["ensemble (A+B logits)"][key] / norm,
                    marker="*",
                    c=f"C{k}",
                    s=60,
                    label=f"ensemble, {label}",
                )
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("test accuracy / better endpoint's (%)")
    for ax in axes:
        ax.set_xlabel("executed MACs / one model's MACs (dense merged network)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, loc="lower right")
    fig.suptitle("CIFAR-10 (JPEG), same labels: merges of two ResNet-20s by width", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
