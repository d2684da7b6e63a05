"""SN-Net stitching: stitching layers, least-squares init, configuration space, budget selection, Pareto front."""

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
