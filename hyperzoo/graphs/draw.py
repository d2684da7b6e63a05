"""Drawing an ``ArchGraph`` with matplotlib: layers by topological depth, one colour per op.

No graphviz: a node's column is its longest-path depth from the input, and nodes of one depth are stacked
vertically, centred, in id order. Real edges are drawn; virtual edges are not (they would cover everything).
"""

from __future__ import annotations

from pathlib import Path

import torch

from hyperzoo.graphs.arch_graph import ArchGraph
from hyperzoo.graphs.topology import topological_depth
from hyperzoo.graphs.vocabulary import PRIMITIVES

__all__ = ["draw_graph", "layout_by_depth"]


def layout_by_depth(graph: ArchGraph) -> torch.Tensor:
    """Node positions ``[N, 2]``: x = topological depth, y = rank within the depth, centred on 0."""
    n = int(graph.num_nodes)
    depth = topological_depth(n, graph.real_edges())
    pos = torch.zeros(n, 2)
    pos[:, 0] = depth.float()
    for d in depth.unique().tolist():
        members = (depth == d).nonzero().flatten()
        pos[members, 1] = torch.arange(len(members), dtype=torch.float) - (len(members) - 1) / 2
    return pos


def _edge_curves(pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, steps: int = 16):
    """Quadratic Bezier curves ``[E, steps, 2]``; edges that skip depths bow out so skips stay visible."""
    p, q = pos[src], pos[dst]  # [E, 2]
    span = (q[:, 0] - p[:, 0]).abs()
    sign = torch.where(src % 2 == 0, 1.0, -1.0)
    ctrl = (p + q) / 2
    ctrl[:, 1] += torch.where(span > 1, 0.25 * span.sqrt() * sign, torch.zeros_like(span))
    t = torch.linspace(0, 1, steps)[None, :, None]  # [1, steps, 1]
    curve = (1 - t) ** 2 * p[:, None] + 2 * (1 - t) * t * ctrl[:, None] + t**2 * q[:, None]
    return curve.numpy()


def draw_graph(graph: ArchGraph, path: str | Path | None = None, labels: bool = False, dpi: int = 120):
    """Draw ``graph`` and save it to ``path`` (format from the suffix); returns the matplotlib figure.

    Args:
        graph: the graph to draw.
        path: output file (``.png``, ``.pdf``, ``.svg``); ``None`` only returns the figure.
        labels: write each node's op name beside it.
        dpi: resolution of raster output.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pos = layout_by_depth(graph)
    width = float(pos[:, 0].max()) + 1 if len(pos) else 1.0
    height = float(pos[:, 1].max() - pos[:, 1].min()) + 1 if len(pos) else 1.0
    fig, ax = plt.subplots(figsize=(min(4 + width * 0.12, 48), min(3 + height * 0.4, 24)))
    src, dst = graph.real_edges()
    ax.add_collection(LineCollection(_edge_curves(pos, src, dst), colors="0.6", linewidths=0.5, zorder=1))

    cmap = plt.get_cmap("tab20")
    ops = graph.op
    for op in ops.unique().tolist():
        mask = ops == op
        ax.scatter(
            pos[mask, 0],
            pos[mask, 1],
            s=40,
            color=cmap(op % 20),
            edgecolors="k",
            linewidths=0.4,
            label=PRIMITIVES[op],
            zorder=2,
        )
    if labels:
        for i, name in enumerate(graph.op_names):
            xy = (float(pos[i, 0]), float(pos[i, 1]))
            ax.annotate(name, xy, fontsize=5, xytext=(3, 3), textcoords="offset points")
    ax.set_title(f"{graph.name}: {int(graph.num_nodes)} nodes, {int(src.numel())} real edges")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    ax.set_xlabel("topological depth")
    ax.set_yticks([])
    ax.autoscale()
    fig.tight_layout()
    if path is not None:
        from hyperzoo.io import atomic_write

        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
        plt.close(fig)
    return fig
