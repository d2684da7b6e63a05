"""Markdown tables for experiments/RESULTS.md from the result files of exp_merge.py and stitch fit.

    python experiments/tables_merge_stitch.py merge experiments/logs/s4/merge_x1.json
    python experiments/tables_merge_stitch.py stitch runs/stitch_cifar10_ls/configs.json \
        --other "random init + 1 epoch=runs/stitch_cifar10_random/configs.json" \
        --other "LS init, untrained=runs/stitch_cifar10_ls_untrained/configs.json"

Printing the tables from the files (instead of copying numbers by hand) keeps RESULTS.md and the runs in step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def merge_table(path: str) -> str:
    result = json.loads(Path(path).read_text())
    rows = result["rows"]
    if result["labels"] == "same":
        lines = ["| row | test acc (%) | executed MACs / one model | params / one model |", "|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['name']} | {100 * r['acc']:.2f} | {r['macs_ratio']:.2f} | {r['params_ratio']:.2f} |")
    else:
        lines = [
            "| row | joint 10-way (%) | classes A, A head (%) | classes B, B head (%) | executed MACs / one model |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['name']} | {100 * r['joint']:.2f} | {100 * r['half_a']:.2f} | {100 * r['half_b']:.2f} | "
                f"{r['macs_ratio']:.2f} |"
            )
    return "\n".join(lines)


def stitch_table(main: str, others: list[str]) -> str:
    tables = {"this run": json.loads(Path(main).read_text())["configs"]}
    for item in others:
        label, path = item.split("=", 1)
        tables[label] = json.loads(Path(path).read_text())["configs"]
    labels = list(tables)
    by_key = {label: {r["key"]: r for r in rows} for label, rows in tables.items()}
    head = "| config | MFLOPs | " + " | ".join(labels) + " |"
    lines = [head, "|---" * (2 + len(labels)) + "|"]
    for r in sorted(tables["this run"], key=lambda r: (not r["anchor"], r["flops"])):
        cells = []
        for label in labels:
            o = by_key[label].get(r["key"])
            cells.append("" if o is None else f"{100 * o['acc']:.2f}{' *' if o['pareto'] else ''}")
        lines.append(f"| {r['key']} | {r['flops'] / 1e6:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["merge", "stitch"])
    p.add_argument("path")
    p.add_argument("--other", action="append", default=[], help="LABEL=configs.json (stitch only)")
    args = p.parse_args()
    print(merge_table(args.path) if args.kind == "merge" else stitch_table(args.path, args.other))


if __name__ == "__main__":
    main()
