"""Graph hypernetworks: GHN-2 (Knyazev et al., NeurIPS 2021), compatible with the reference ppuda checkpoints."""

from hyperzoo.ghn.checkpoint import load_reference_checkpoint, map_reference_state_dict
from hyperzoo.ghn.decoder import ConvDecoder, normalize_parameter, tile_to_shape
from hyperzoo.ghn.gatedgnn import GatedGNN, sweep_plan
from hyperzoo.ghn.ghn import GHN2
from hyperzoo.ghn.shape_encoder import ShapeEncoder

__all__ = [
    "GHN2",
    "ConvDecoder",
    "GatedGNN",
    "ShapeEncoder",
    "load_reference_checkpoint",
    "map_reference_state_dict",
    "normalize_parameter",
    "sweep_plan",
    "tile_to_shape",
]
