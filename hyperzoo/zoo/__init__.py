"""A local model zoo: train, store (safetensors + JSON), list and load CIFAR-10 models and local weight files.

Owns: the zoo's on-disk format (safetensors + JSON card per entry), listing and loading entries (merged ones too:
their base model resized to the stored tensors by :mod:`hyperzoo.nets.resize`), adding external weight files, and
the recipe that trains a zoo (the config of each entry, the callback that stores a trained entry). The driver that
runs one ``hyperzoo fit`` per entry (``train_zoo``, ``train_entry``) is in the Lightning layer,
:mod:`hyperzoo.lightning.zoo_train` (also ``hyperzoo.train_zoo``).

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``,
``config_yaml``, ``_lazy``, ``_procs``), the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``,
``hyperzoo.data``) and ``hyperzoo.hypernets``. The methods that use the zoo (merging, stitching, Lightning
training) sit above it.
"""

from typing import TYPE_CHECKING

from hyperzoo._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (hyperzoo._lazy): `import hyperzoo.zoo` loads no torch
    from hyperzoo.zoo.store import add_external, entry_path, list_zoo, load_meta, load_model, save_model, zoo_dir
    from hyperzoo.zoo.store import load_model as load_zoo_model  # the name ``hyperzoo`` re-exports
    from hyperzoo.zoo.train import ClassSubsetCIFAR10, ZooEntryWriter, entry_config, evaluate

__all__ = [
    "ClassSubsetCIFAR10",
    "ZooEntryWriter",
    "add_external",
    "entry_config",
    "entry_path",
    "evaluate",
    "list_zoo",
    "load_meta",
    "load_model",
    "load_zoo_model",
    "save_model",
    "zoo_dir",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
