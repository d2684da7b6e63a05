"""SMASH (Brock et al., ICLR 2018): memory-bank space and encoding, hypernet, one-shot network, ranking."""

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
