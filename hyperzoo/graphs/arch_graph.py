"""``ArchGraph``: the computation graph of a neural network, as a PyG ``Data`` object.

One node per parameter tensor (a norm layer's weight and bias share one node) plus the parameter-free nodes
the reference GHN keeps (input, sum, concat, pooling, global average, ...). Node ids follow the reference's
topological order, real edges have distance 1 and virtual edges carry the directed shortest-path distance
``2..s_max`` (GHN-2, Knyazev et al., 2021, "Parameter Prediction for Unseen Deep Architectures", Sec. 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from hyperzoo.errors import ConfigError
from hyperzoo.graphs.topology import shortest_path_lengths, topological_order
from hyperzoo.graphs.vocabulary import OP_ID, PRIMITIVES, op_id

__all__ = ["DEFAULT_S_MAX", "ArchGraph", "as_graph_list", "batch_graphs", "distance_matrix", "shape_to_4d"]

DEFAULT_S_MAX = 50
NODE_KEYS = ("op", "shape")  # one row per node: concatenated along dim 0
EDGE_KEYS = ("edge_index", "edge_dist")  # one column (edge_index) or entry (edge_dist) per edge


def shape_to_4d(shape: Sequence[int] | None) -> tuple[int, int, int, int]:
    """Encode a parameter shape as 4 integers ``(out, in, h, w)``, the layout the GHN shape encoder reads.

    1-D ``(c,)`` -> ``(c, 1, 1, 1)``; 2-D ``(o, i)`` -> ``(o, i, 1, 1)``; 3-D ``(a, t, c)`` (a ViT positional
    embedding ``(1, 197, 768)``, tokens x channels) -> ``(a, c, isqrt t, isqrt t)`` as ghn3 does; 4-D as is;
    more dims fold the trailing ones into ``w``. ``None`` or ``()`` -> zeros (a parameter-free node).
    """
    if shape is None or len(shape) == 0:
        return (0, 0, 0, 0)
    s = [int(x) for x in shape]
    if len(s) == 1:
        return (s[0], 1, 1, 1)
    if len(s) == 2:
        return (s[0], s[1], 1, 1)
    if len(s) == 3:
        r = math.isqrt(s[1])
        return (s[0], s[2], r, r)
    if len(s) == 4:
        return (s[0], s[1], s[2], s[3])
    return (s[0], s[1], s[2], math.prod(s[3:]))


class ArchGraph(Data):
    r"""The computation graph of one architecture (a batch of them through ``torch_geometric.data.Batch``).

    Build it with :meth:`from_dag` (explicit nodes and edges) or
    :func:`hyperzoo.graphs.graph_from_module` (any ``nn.Module``). Node ``0`` is the input, nodes are in
    topological order, so every edge goes from a lower to a higher id.

    Args:
        op: vocabulary id of each node (:data:`hyperzoo.graphs.PRIMITIVES`).
        param_names: name of the parameter each node stands for, as in ``model.named_parameters()``
            (the weight's name for a norm node, which also covers the bias; the op name for a pooling node,
            as in the reference; '' for other parameter-free nodes).
        shape: 4-D shape encoding of each node (:func:`shape_to_4d`); pooling nodes carry ``(1, 1, k, k)``.
        edge_index: real and virtual edges, ``src < dst``, sorted by ``(src, dst)``.
        edge_dist: 1 for a real edge, ``2..s_max`` for a virtual one.
        name: the architecture's name.
        **kwargs: other attributes (``num_nodes``, ``s_max``, ``num_params``, ``input_size``, ``unmapped``).

    Shapes:
        - **op:** ``[N]``
        - **shape:** ``[N, 4]``
        - **edge_index:** ``[2, E]``
        - **edge_dist:** ``[E]``

    Batching (:meth:`__cat_dim__`, :meth:`__inc__`; use :func:`batch_graphs`): node tensors (``op``, ``shape``) and
    edge tensors (``edge_index``, ``edge_dist``) are concatenated, ``edge_index`` offset by the nodes of the graphs
    before it; any other tensor is one per graph (stacked); Python values (``param_names``, ``name``,
    ``net_args``, ``s_max``, ``index``...) stay one per graph.
    """

    def __init__(
        self,
        op: Tensor | None = None,
        param_names: list[str] | None = None,
        shape: Tensor | None = None,
        edge_index: Tensor | None = None,
        edge_dist: Tensor | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            edge_index=edge_index,
            op=op,
            param_names=param_names,
            shape=shape,
            edge_dist=edge_dist,
            name=name,
            **kwargs,
        )

    def __cat_dim__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Batching: edges along their last dimension, node/edge attributes along the first, others stacked."""
        if key == "edge_index":
            return 1
        if key in NODE_KEYS or key in EDGE_KEYS:
            return 0
        return None

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Batching: only ``edge_index`` holds node ids (PyG's default also offsets ``index``, a store position)."""
        return self.num_nodes if key == "edge_index" else 0

    # ------------------------------------------------------------------------------------------------------
    # construction

    @classmethod
    def from_dag(
        cls,
        ops: Sequence[str | int],
        param_names: Sequence[str],
        shapes: Sequence[Sequence[int] | None],
        edges: Sequence[tuple[int, int]] | Tensor,
        s_max: int = DEFAULT_S_MAX,
        name: str = "",
        sort: bool = True,
        **extra: Any,
    ) -> ArchGraph:
        """Build a graph from nodes and real edges.

        Args:
            ops: op of each node, by name (legacy names accepted) or id.
            param_names: parameter name of each node ('' for none).
            shapes: parameter shape of each node (any rank; encoded with :func:`shape_to_4d`), ``None`` or
                ``()`` for none.
            edges: real edges ``(src, dst)`` between node positions in the lists above.
            s_max: longest shortest path kept as a virtual edge (1: real edges only).
            name: architecture name.
            sort: reorder nodes topologically the way the reference does (networkx's generation order over the
                given indices). ``False`` keeps the given order, which must already be topological.
            **extra: other attributes stored on the graph.

        Raises:
            ConfigError: on inconsistent lengths, out-of-range or backward edges, or a cycle.
        """
        n = len(ops)
        if len(param_names) != n or len(shapes) != n:
            raise ConfigError(
                f"ArchGraph.from_dag: got {n} ops, {len(param_names)} param_names and {len(shapes)} shapes; "
                "give one entry per node in each"
            )
        if s_max < 1:
            raise ConfigError(f"s_max must be >= 1 (1 = real edges only), got {s_max}")
        edge_index = (
            edges.long().reshape(2, -1)
            if isinstance(edges, Tensor)
            else torch.tensor([tuple(e) for e in edges], dtype=torch.long).reshape(-1, 2).t()
        )
        if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= n):
            raise ConfigError(f"ArchGraph.from_dag: edges refer to nodes outside 0..{n - 1}")
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
        if sort:
            try:
                order = topological_order(n, edge_index)
            except ValueError as e:
                raise ConfigError(f"ArchGraph.from_dag({name!r}): {e}") from None
        else:
            order = list(range(n))
        perm = torch.tensor(order, dtype=torch.long)
        rank = torch.empty(n, dtype=torch.long)
        rank[perm] = torch.arange(n)
        edge_index = rank[edge_index]
        if edge_index.numel() and bool((edge_index[0] >= edge_index[1]).any()):
            raise ConfigError(
                f"ArchGraph.from_dag({name!r}): with sort=False the nodes must be in topological order "
                "(every edge from a lower to a higher index)"
            )
        op = torch.tensor([op_id(ops[i]) for i in order], dtype=torch.long)
        shape = torch.tensor([shape_to_4d(shapes[i]) for i in order], dtype=torch.long).reshape(n, 4)
        names = [str(param_names[i]) for i in order]
        dist = shortest_path_lengths(n, edge_index, s_max)
        return cls._from_dense(op, names, shape, dist, name=name, s_max=s_max, **extra)

    @classmethod
    def _from_dense(
        cls,
        op: Tensor,
        param_names: list[str],
        shape: Tensor,
        dist: Tensor,
        name: str,
        s_max: int,
        **extra: Any,
    ) -> ArchGraph:
        # nonzero() walks row-major, giving edges sorted by (src, dst) like the reference's edge list.
        idx = dist.nonzero()
        graph = cls(
            op=op,
            param_names=param_names,
            shape=shape,
            edge_index=idx.t().contiguous(),
            edge_dist=dist[idx[:, 0], idx[:, 1]],
            name=name,
            s_max=s_max,
            **extra,
        )
        graph.num_nodes = op.numel()
        return graph

    # ------------------------------------------------------------------------------------------------------
    # views

    @property
    def op_names(self) -> list[str]:
        """The op name of each node."""
        return [PRIMITIVES[i] for i in self.op.tolist()]

    @property
    def has_param(self) -> Tensor:
        """BoolTensor ``[N]``: whether a node stands for a parameter (a pooling node has a shape only)."""
        return (self.shape.abs().sum(dim=1) > 0) & (self.op != OP_ID["max_pool"]) & (self.op != OP_ID["avg_pool"])

    def real_edges(self) -> Tensor:
        """Real (distance-1) edges, ``[2, E_real]``."""
        return self.edge_index[:, self.edge_dist == 1]

    def with_s_max(self, s_max: int) -> ArchGraph:
        """A copy without the virtual edges longer than ``s_max`` (distances are kept, not recomputed)."""
        if s_max < 1:
            raise ConfigError(f"s_max must be >= 1 (1 = real edges only), got {s_max}")
        keep = self.edge_dist <= s_max
        out = self.clone()
        out.edge_index = self.edge_index[:, keep]
        out.edge_dist = self.edge_dist[keep]
        out.s_max = min(s_max, int(getattr(self, "s_max", s_max) or s_max))
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """``{"num_nodes", "nodes", "param_names", "edges"}`` with edges as ``[src, dst, distance]``."""
        edges = torch.cat([self.edge_index.t(), self.edge_dist[:, None]], dim=1)
        return {
            "num_nodes": int(self.num_nodes),
            "nodes": self.op_names,
            "param_names": list(self.param_names),
            "edges": edges.tolist(),
        }

    def op_histogram(self) -> dict[str, int]:
        """Number of nodes per op name, in vocabulary order."""
        counts = torch.bincount(self.op, minlength=len(PRIMITIVES)).tolist()
        return {PRIMITIVES[i]: c for i, c in enumerate(counts) if c}


def batch_graphs(graphs: Sequence[ArchGraph]) -> Batch:
    """One PyG :class:`~torch_geometric.data.Batch` of several graphs: their disjoint union.

    ``Batch.from_data_list`` with :class:`ArchGraph`'s batching rules (node and edge tensors concatenated, edge ids
    offset, ``batch`` and ``ptr`` added), except that Python values stay one per graph, as lists
    (``batch.net_args[i]``); ``Batch.from_data_list`` alone would turn numbers into tensors and merge
    dictionaries key by key (``net_args`` of different networks have different keys). ``batch.to_data_list()``
    and ``batch[i]`` give the graphs back.

    Raises:
        ConfigError: no graphs, or anything but single :class:`ArchGraph` objects.
    """
    graphs = list(graphs)
    if not graphs or not all(isinstance(g, ArchGraph) and not isinstance(g, Batch) for g in graphs):
        kinds = sorted({type(g).__name__ for g in graphs})
        raise ConfigError(f"batch_graphs: expected one or more ArchGraphs (not batches), got {len(graphs)} of {kinds}")
    stores = [g.to_dict() for g in graphs]
    python_keys = sorted({k for d in stores for k, v in d.items() if not isinstance(v, Tensor)} - {"num_nodes"})
    batch = Batch.from_data_list(graphs, exclude_keys=python_keys)
    slices = torch.arange(len(graphs) + 1)
    for key in python_keys:
        batch[key] = [d.get(key) for d in stores]
        batch._slice_dict[key] = slices  # Batch.get_example / to_data_list hand entry i to graph i
        batch._inc_dict[key] = None
    return batch


def as_graph_list(graphs: ArchGraph | Sequence[ArchGraph] | Batch) -> list[ArchGraph]:
    """The graphs of one graph, a sequence of graphs or a :class:`Batch` of them (``to_data_list``), as a list."""
    if isinstance(graphs, Batch):
        return graphs.to_data_list()
    return [graphs] if isinstance(graphs, ArchGraph) else list(graphs)


def distance_matrix(graph: ArchGraph, s_max: int | None = None) -> Tensor:
    """Dense ``[N, N]`` matrix of edge distances (0: no edge), optionally truncated at ``s_max``.

    Shapes:
        - **output:** ``[N, N]``
    """
    n = int(graph.num_nodes)
    dist = torch.zeros(n, n, dtype=torch.long)
    dist[graph.edge_index[0], graph.edge_index[1]] = graph.edge_dist
    if s_max is not None:
        dist[dist > s_max] = 0
    return dist
