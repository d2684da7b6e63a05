"""SN-Net stitching: stitching layers, least-squares init, configuration space, budget selection, Pareto front.

Owns: :class:`SNNet` and its stitching layers, their least-squares initialisation, the configuration space and its
budget-driven selection, a stitch run's config and outputs (:mod:`hyperzoo.stitch.run`); its LightningModule is in
:mod:`hyperzoo.lightning.stitch_module`, the ``hyperzoo stitch fit`` driver (``run_fit``) in
:mod:`hyperzoo.lightning.stitch_fit`.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``,
``config_yaml``, ``_lazy``, ``_procs``), the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``,
``hyperzoo.data``),
``hyperzoo.hypernets``, the model zoo ``hyperzoo.zoo`` (its anchors) and ``hyperzoo.merge`` (the least-squares
solver).
"""

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
