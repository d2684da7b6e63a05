"""SN-Net stitching: stitching layers, least-squares init, configuration space, budget selection, Pareto front."""

from typing import TYPE_CHECKING

from hyperzoo._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (hyperzoo._lazy): `import hyperzoo.stitch` loads no torch
    from hyperzoo.stitch.select import load_table, pareto_front, plot_front, select
    from hyperzoo.stitch.snnet import SNNet, StitchConfig, StitchingLayer, init_stitches_ls, split_blocks

__all__ = [
    "SNNet",
    "StitchConfig",
    "StitchingLayer",
    "init_stitches_ls",
    "load_table",
    "pareto_front",
    "plot_front",
    "select",
    "split_blocks",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
