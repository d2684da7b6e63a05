"""Computation graphs of neural networks: vocabulary, ``ArchGraph``, nn.Module -> graph, virtual edges."""

import warnings

# torch_geometric warns about torch.jit.script on import; it is noise for users of hyperzoo.
warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph, distance_matrix, shape_to_4d  # noqa: E402
from hyperzoo.graphs.topology import shortest_path_lengths, topological_depth, topological_order  # noqa: E402
from hyperzoo.graphs.vocabulary import (  # noqa: E402
    EXTENSIONS,
    LEGACY_OP_NAMES,
    OP_ID,
    PRIMITIVES,
    REFERENCE_PRIMITIVES,
    canonical_op_name,
    op_id,
)

__all__ = [
    "DEFAULT_S_MAX",
    "EXTENSIONS",
    "LEGACY_OP_NAMES",
    "OP_ID",
    "PRIMITIVES",
    "REFERENCE_PRIMITIVES",
    "ArchGraph",
    "canonical_op_name",
    "distance_matrix",
    "op_id",
    "shape_to_4d",
    "shortest_path_lengths",
    "topological_depth",
    "topological_order",
]
