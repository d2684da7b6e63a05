"""hyperzoo: hypernetworks and parameter prediction.

The public API, re-exported from the subpackages. Heavy pieces (Lightning modules, data modules, graphs) are
imported on first use, so ``import hyperzoo`` stays cheap.

Imports go one way, bottom to top (each subpackage's docstring says what it owns and may import;
``tests/test_layering.py`` holds the table and checks every import against it):

- base modules: ``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``config_yaml``, ``_lazy``,
  ``_procs``
- ``nets`` (target networks, the model registry, MAC counts); ``graphs`` and ``layers`` on it; ``data``
- ``hypernets`` (what every hypernetwork shares), then ``ghn`` and ``smash``
- ``zoo``, then ``merge`` and ``stitch``; ``lightning`` (a LightningModule per method); ``demo``; ``cli`` on top
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from typing import TYPE_CHECKING, Any

from hyperzoo.errors import ConfigError as ConfigError
from hyperzoo.errors import DataError as DataError
from hyperzoo.errors import HyperzooError as HyperzooError
from hyperzoo.errors import UnknownNameError as UnknownNameError

# torch_geometric warns about torch.jit.script on import; set here, before any subpackage imports it first
warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

if TYPE_CHECKING:  # imported on first use, like the names of _LAZY: `import hyperzoo` loads no torch
    from hyperzoo.nets import create_model as create_model
    from hyperzoo.nets import is_model as is_model
    from hyperzoo.nets import list_models as list_models
    from hyperzoo.nets import register_model as register_model

__version__ = "0.1.0"

# name -> submodule that defines it (imported lazily by __getattr__)
_LAZY = {
    "create_model": "hyperzoo.nets",
    "is_model": "hyperzoo.nets",
    "list_models": "hyperzoo.nets",
    "register_model": "hyperzoo.nets",
    "ArchGraph": "hyperzoo.graphs",
    "graph_from_module": "hyperzoo.graphs",
    "GraphStore": "hyperzoo.graphs.store",
    "ImageClassifier": "hyperzoo.lightning",
    "ImageDataModule": "hyperzoo.data",
    "CIFAR10DataModule": "hyperzoo.data",
    "CIFAR100DataModule": "hyperzoo.data",
    "ImageFolderDataModule": "hyperzoo.data",
    "ImageNetDataModule": "hyperzoo.data",
    "BatchAugment": "hyperzoo.data",
    "embedded_sample_root": "hyperzoo.data",
    "adapt_to_cifar": "hyperzoo.nets",
    "derive_spec": "hyperzoo.merge",
    "merge_models": "hyperzoo.merge",
    "SNNet": "hyperzoo.stitch",
    "load_zoo_model": "hyperzoo.zoo",
    "train_zoo": "hyperzoo.lightning.zoo_train",
    "laurelize": "hyperzoo.layers",
    "GrassmannHead": "hyperzoo.layers",
    "GrassmannOptimizer": "hyperzoo.layers",
    "TemplateWideResNet": "hyperzoo.layers",
    "GCRClassifier": "hyperzoo.lightning.gcr",
    "MixtureGrowth": "hyperzoo.lightning.growth",
    "param_specs": "hyperzoo.hypernets",
    "functional_forward": "hyperzoo.hypernets",
    "batched_forward": "hyperzoo.hypernets",
    "MLPHypernet": "hyperzoo.hypernets",
    "ChunkedMLPHypernet": "hyperzoo.hypernets",
    "MIPHypernet": "hyperzoo.hypernets",
    "SMASH": "hyperzoo.smash",
    "SMASHSpace": "hyperzoo.smash",
    "SMASHModule": "hyperzoo.lightning.smash_module",
    "MIPModule": "hyperzoo.lightning.mip_module",
}

__all__ = [
    "ConfigError",
    "DataError",
    "HyperzooError",
    "UnknownNameError",
    "__version__",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"hyperzoo.{name}") is not None:
        return importlib.import_module(f"hyperzoo.{name}")  # `hyperzoo.nets` after `import hyperzoo`, as before
    raise AttributeError(f"module 'hyperzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
