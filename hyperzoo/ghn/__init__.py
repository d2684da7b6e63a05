"""Graph hypernetworks by name through :func:`create_ghn`.

GHN-1, GHN-2 (Knyazev et al., NeurIPS 2021; compatible with the reference ppuda checkpoints), the MLP baseline and
GHN-3 (Knyazev et al., ICML 2023).

Owns: the GHN models (shape encoder, GatedGNN, Graphormer, decoders, normalisation), the GHN variants registry,
checkpoints (hyperzoo's safetensors + JSON, the reference ppuda and GHN-3 files, the published-checkpoint registry,
the shipped checkpoints in ``hyperzoo/pretrained/``), evaluation of predicted parameters and the GHN commands. Its
LightningModule (GHN training) is in :mod:`hyperzoo.lightning.ghn_module`.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``), the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``, ``hyperzoo.data``) and
``hyperzoo.hypernets`` (what every hypernetwork shares).
"""

from typing import TYPE_CHECKING

from hyperzoo._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (hyperzoo._lazy): `import hyperzoo.ghn` loads no torch
    from hyperzoo.ghn.checkpoint import (
        PRETRAINED,
        load_ghn,
        load_reference_checkpoint,
        map_reference_state_dict,
        read_card,
        save_ghn,
    )
    from hyperzoo.ghn.decoder import ConvDecoder, normalize_parameter, tile_to_shape
    from hyperzoo.ghn.gatedgnn import GatedGNN, sweep_plan
    from hyperzoo.ghn.ghn import GHN, GHN2, UnpredictableLayerError, set_bn_batch_stats
    from hyperzoo.ghn.published import from_pretrained
    from hyperzoo.ghn.shape_encoder import ShapeEncoder
    from hyperzoo.ghn.variants import GHNS, create_ghn, ghn_config, list_ghns

__all__ = [
    "GHN",
    "GHN2",
    "GHNS",
    "PRETRAINED",
    "ConvDecoder",
    "GatedGNN",
    "ShapeEncoder",
    "UnpredictableLayerError",
    "create_ghn",
    "from_pretrained",
    "ghn_config",
    "list_ghns",
    "load_ghn",
    "load_reference_checkpoint",
    "map_reference_state_dict",
    "normalize_parameter",
    "read_card",
    "save_ghn",
    "set_bn_batch_stats",
    "sweep_plan",
    "tile_to_shape",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
