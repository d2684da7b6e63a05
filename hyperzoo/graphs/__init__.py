"""Computation graphs of neural networks: vocabulary, ``ArchGraph``, nn.Module -> graph, virtual edges.

Owns: the op vocabulary, :class:`ArchGraph`, tracing an ``nn.Module`` or an ONNX model into a graph (with the GHN-2
and GHN-3 graph rules), graph stores (HDF5), DeepNets-1M graph files, graph generation and drawing, and what a
graph says about a network (:mod:`~hyperzoo.graphs.scale_invariance`: the weights a batch norm makes
scale-invariant).

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``) and ``hyperzoo.nets``.
"""

import warnings
from typing import TYPE_CHECKING

from hyperzoo._lazy import lazy_exports

# torch_geometric warns about torch.jit.script on import; it is noise for users of hyperzoo.
warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

if TYPE_CHECKING:  # imported on first use (hyperzoo._lazy): `import hyperzoo.graphs` loads no torch
    from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph, batch_graphs, distance_matrix, shape_to_4d
    from hyperzoo.graphs.from_module import UnmappedModuleError, graph_from_module
    from hyperzoo.graphs.param_ops import FUNCTION_OPS, param_op
    from hyperzoo.graphs.scale_invariance import match_norms, normalized_layers
    from hyperzoo.graphs.topology import shortest_path_lengths, topological_depth, topological_order
    from hyperzoo.graphs.vocabulary import (
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
    "FUNCTION_OPS",
    "LEGACY_OP_NAMES",
    "OP_ID",
    "PRIMITIVES",
    "REFERENCE_PRIMITIVES",
    "ArchGraph",
    "UnmappedModuleError",
    "batch_graphs",
    "canonical_op_name",
    "distance_matrix",
    "graph_from_module",
    "match_norms",
    "normalized_layers",
    "op_id",
    "param_op",
    "shape_to_4d",
    "shortest_path_lengths",
    "topological_depth",
    "topological_order",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
