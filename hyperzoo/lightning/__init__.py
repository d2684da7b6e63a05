"""LightningModules and the LightningCLI of hyperzoo.

Owns: one LightningModule per trained method (image classifier, GHN, MIP, SMASH, GCR, MixtureGrowth, SN-Net
stitching), their optimizer and schedule plumbing, loggers, resuming, the LightningCLI behind ``hyperzoo fit``, and
the drivers that run it from Python with overrides: ``hyperzoo zoo train`` (:mod:`hyperzoo.lightning.zoo_train`)
and ``hyperzoo stitch fit`` (:mod:`hyperzoo.lightning.stitch_fit`).

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``,
``config_yaml``, ``_lazy``, ``_procs``), the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``,
``hyperzoo.data``),
``hyperzoo.hypernets``, the methods it trains (``hyperzoo.ghn``, ``hyperzoo.smash``, ``hyperzoo.stitch``),
``hyperzoo.merge`` and ``hyperzoo.zoo``. Only the ``cli`` and ``demo`` modules sit above it.
"""

from hyperzoo.lightning.classifier import ImageClassifier
from hyperzoo.lightning.ghn_module import GHNModule
from hyperzoo.lightning.loggers import ResumableCSVLogger

__all__ = ["GHNModule", "ImageClassifier", "ResumableCSVLogger"]
