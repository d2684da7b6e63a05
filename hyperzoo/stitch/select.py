"""Choosing among evaluated configurations: the Pareto front of accuracy against FLOPs, and a budget query.

A table is a list of rows ``{"id", "key", "flops", "acc", ...}`` (one per configuration, as written by
``hyperzoo stitch fit``). A row is on the Pareto front when no other row has at most its FLOPs and a higher
accuracy (ties in FLOPs keep the most accurate).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hyperzoo.errors import ConfigError, DataError

__all__ = ["load_table", "pareto_front", "plot_front", "select"]


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The non-dominated rows, sorted by FLOPs."""
    front: list[dict[str, Any]] = []
    best = float("-inf")
    for row in sorted(rows, key=lambda r: (r["flops"], -r["acc"])):
        if row["acc"] > best:
            front.append(row)
            best = row["acc"]
    return front


def select(rows: list[dict[str, Any]], budget_flops: float) -> dict[str, Any]:
    """The most accurate configuration with at most ``budget_flops`` FLOPs per image.

    Raises:
        ConfigError: no configuration fits the budget (the message gives the cheapest).
    """
    fits = [r for r in rows if r["flops"] <= budget_flops]
    if not fits:
        cheapest = min(rows, key=lambda r: r["flops"])
        raise ConfigError(
            f"no configuration fits {budget_flops:.4g} FLOPs; the cheapest ({cheapest['key']}) needs "
            f"{cheapest['flops']:.4g}"
        )
    return max(fits, key=lambda r: (r["acc"], -r["flops"]))


def load_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``configs.json`` table."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"stitch table {p} not found; run `hyperzoo stitch fit` first")
    redo = "run `hyperzoo stitch fit` again to rewrite it"
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"stitch table {p} is not valid JSON ({e}); it is corrupt or truncated: {redo}") from None
    rows = data.get("configs") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise DataError(f"stitch table {p} has no list of evaluated configurations ('configs'); {redo}")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not all(isinstance(r.get(k), (int, float)) for k in ("flops", "acc")):
            raise DataError(f"stitch table {p}: row {i} needs numeric 'flops' and 'acc', got {r!r:.120}; {redo}")
        if not all(math.isfinite(r[k]) for k in ("flops", "acc")):
            raise DataError(f"stitch table {p}: row {i} has a non-finite 'flops' or 'acc'; {redo}")
        r.setdefault("key", f"row{i}")
    return rows


def plot_front(
    rows: list[dict[str, Any]],
    path: str | Path,
    title: str = "SN-Net",
    others: dict | None = None,
) -> None:
    """Scatter of every configuration, the front as a line, anchors marked; ``others`` adds labelled series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([r["flops"] / 1e6 for r in rows], [100 * r["acc"] for r in rows], s=12, c="0.6", label="configurations")
    front = pareto_front(rows)
    ax.plot([r["flops"] / 1e6 for r in front], [100 * r["acc"] for r in front], "-o", ms=3, c="k", label="Pareto front")
    anchors = [r for r in rows if r.get("anchor")]
    ax.scatter(
        [r["flops"] / 1e6 for r in anchors],
        [100 * r["acc"] for r in anchors],
        marker="*",
        s=120,
        c="r",
        label="anchors",
        zorder=3,
    )
    for k, (name, series) in enumerate((others or {}).items()):
        ax.scatter(
            [r["flops"] / 1e6 for r in series], [100 * r["acc"] for r in series], s=12, label=name, c=f"C{k + 1}"
        )
    ax.set_xlabel("MFLOPs per image")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from hyperzoo.io import atomic_write

    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
