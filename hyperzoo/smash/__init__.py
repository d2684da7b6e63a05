"""SMASH (Brock et al., ICLR 2018): memory-bank space and encoding, hypernet, one-shot network, ranking.

Owns: everything SMASH-specific (its architecture space and encoding, hypernet, one-shot network, checkpoints and
ranking); its LightningModule is in :mod:`hyperzoo.lightning.smash_module`.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``), the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``, ``hyperzoo.data``) and
``hyperzoo.hypernets``. Not the GHNs (``ghn``): the two hypernetwork families share only what is in
``hyperzoo.hypernets``.
"""

from typing import TYPE_CHECKING

from hyperzoo._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (hyperzoo._lazy): `import hyperzoo.smash` loads no torch
    from hyperzoo.smash.hypernet import SMASHHypernet, WNConv2d
    from hyperzoo.smash.model import SMASH, load_smash, save_smash
    from hyperzoo.smash.network import DerivedNet, SMASHNet
    from hyperzoo.smash.space import Architecture, Block, Op, SMASHSpace

__all__ = [
    "SMASH",
    "Architecture",
    "Block",
    "DerivedNet",
    "Op",
    "SMASHHypernet",
    "SMASHNet",
    "SMASHSpace",
    "WNConv2d",
    "load_smash",
    "save_smash",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
