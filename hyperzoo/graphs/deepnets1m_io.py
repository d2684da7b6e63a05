"""Reader for the published DeepNets-1M files (``deepnets1m_{train,eval,search}.hdf5`` + ``*_meta.json``).

The reference generator (ppuda ``experiments/net_generator.py``) writes one HDF5 group per split and one
sub-group per architecture with ``adj`` (uint8 ``[N, N]`` shortest-path distances up to 250, nodes in
topological order) and ``nodes`` (uint16 ``[N, 3]``: primitive id, cell index, op-name id). The JSON sidecar
holds each net's ``net_args`` and the two id -> name tables (``primitives_ext``, ``unique_op_names``), whose
names differ between dataset versions (``conv_5x5``, ``fc-b``, ...): they are mapped to the current
vocabulary with :func:`~hyperzoo.graphs.vocabulary.canonical_op_name`, and parameter names are rebuilt the
way the reference loader does (``cells.<i>.`` prefix, the ``op`` level older versions omit).

The HDF5 file is opened lazily, once per DataLoader worker, and the reader pickles without it.

What the files hold, checked against networks rebuilt from their ``net_args`` (tests/graphs/test_store.py):

* ``adj`` is exact: for every CNN of the sample files, the rebuilt network's graph
  (:func:`~hyperzoo.graphs.graph_from_module`, s_max 50) has the same edges and distances.
* ``nodes`` rows are **not** in ``adj`` order: the reference generator writes them cell by cell (its
  ``node_info`` lists), while ``adj`` follows the graph's topological order, so whenever a node of cell
  ``k+1`` precedes one of cell ``k`` (almost every net) the stored labels are permuted relative to the edges.
  The rebuilt labels, grouped by cell, equal the stored rows exactly. The reference loaders (and GHN training
  on these files) read them as if aligned. ghn3's "stem_type 1 wiring" repair inspects fixed rows of ``adj``
  by those labels; on these files the wiring is already right and that repair would change correct edges.
  Use ``rebuild=True`` for graphs with aligned labels.
* Nets with ``msa`` cells: the reference run under torch 2.14 stored no ``msa`` nodes (its positional autograd
  pattern for attention no longer matches) and a ``sum`` node after the positional encoding; a rebuilt graph with
  the default ``"ghn2"`` rules of :func:`~hyperzoo.graphs.graph_from_module` equals the stored one as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hyperzoo.errors import DataError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph, shape_to_4d
from hyperzoo.graphs.vocabulary import OP_ID, canonical_op_name

__all__ = ["DeepNets1MReader", "attach_shapes"]

_POOL_SHAPE = (1, 1, 3, 3)  # every DeepNets-1M pooling op is 3x3 (the reference loader assumes the same)
_PARAM_FREE = ("input", "sum", "concat", "glob_avg", "msa", "cse", "max_pool", "avg_pool")


def _param_name(raw: str, cell: int, op: str) -> str:
    """Full parameter name of a node from its stored cell-relative name (reference loader conventions)."""
    if op in ("max_pool", "avg_pool"):
        return op
    if raw in _PARAM_FREE or raw == "" or not raw.endswith((".weight", ".bias", ".")):
        return ""
    if raw.startswith("classifier"):
        return raw
    if raw.endswith("to_out.0."):  # an older version lost the leaf name of the MSA output projection
        raw += "weight"
    parts = raw.split(".")
    for i, part in enumerate(parts[:-2]):
        # older versions named ops `_ops.<k>.<j>.weight` instead of `_ops.<k>.op.<j>.weight`
        if part == "_ops" and parts[i + 2] != "op" and parts[i + 2].isdigit():
            parts.insert(i + 2, "op")
            break
    raw = ".".join(parts)
    for prefix in ("stem", "pos_enc"):  # network-level modules are stored under cell 0
        if raw.startswith(prefix):
            return raw
    return f"cells.{cell}.{raw}"


def attach_shapes(graph: ArchGraph, net: nn.Module) -> ArchGraph:
    """Fills ``graph.shape`` from ``net``'s parameters (matched by ``graph.param_names``), in place.

    Pooling nodes get ``(1, 1, 3, 3)``; other parameter-free nodes zeros.

    Raises:
        DataError: a node names a parameter the network does not have.
    """
    params = dict(net.named_parameters())
    shapes = []
    for op, name in zip(graph.op.tolist(), graph.param_names):
        if op in (OP_ID["max_pool"], OP_ID["avg_pool"]):
            shapes.append(_POOL_SHAPE)
        elif name:
            if name not in params:
                raise DataError(
                    f"graph {graph.name!r}: node parameter {name!r} is not in the rebuilt network "
                    f"({type(net).__name__}); the file and the net_args disagree"
                )
            shapes.append(shape_to_4d(params[name].shape))
        else:
            shapes.append((0, 0, 0, 0))
    graph.shape = torch.tensor(shapes, dtype=torch.long).reshape(-1, 4)
    return graph


class DeepNets1MReader(torch.utils.data.Dataset):
    """A split of a published DeepNets-1M file as :class:`ArchGraph` objects.

    Args:
        path: ``deepnets1m_<name>.hdf5``; the meta JSON is ``deepnets1m_<name>_meta.json`` beside it.
        split: the group to read (``train``, ``search``, or one of ``val``, ``test``, ``wide``, ``deep``,
            ``dense``, ``bnfree`` in the merged eval file); default: the file's only split, or ``val``.
        s_max: keep virtual edges up to this distance (the files store up to 250).
        shapes: fill ``graph.shape`` by building the network on the meta device (no memory); without it,
            shapes are zeros except pooling nodes. Widths are not stored in the files, so shapes use
            ``net_args["C"]`` if present, else ``C``.
        C: default width for shapes and :meth:`build_network` when ``net_args`` has none (the train split).
        meta_path: the meta JSON, if not beside ``path``.
        rebuild: return the graph of the network rebuilt from ``net_args`` (labels aligned with edges;
            slower: one forward pass per item) instead of the stored one.

    Each item is an ``ArchGraph`` named ``deepnets1m/<split>/<index>`` with ``net_args`` (a dict with the
    genotype in dict form, as stored) and ``net_idx`` attached.
    """

    def __init__(
        self,
        path: str | Path,
        split: str | None = None,
        s_max: int = DEFAULT_S_MAX,
        shapes: bool = True,
        C: int = 32,
        meta_path: str | Path | None = None,
        rebuild: bool = False,
    ) -> None:
        self.path = Path(path)
        self.rebuild = rebuild
        self.meta_path = Path(meta_path) if meta_path else self.path.with_name(self.path.stem + "_meta.json")
        self.s_max, self.shapes, self.C = s_max, shapes, C
        for p in (self.path, self.meta_path):
            if not p.exists():
                raise DataError(
                    f"DeepNets-1M file {p} not found; download the published files (ppuda "
                    "data/download.sh) or give the meta JSON with meta_path="
                )
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{self.meta_path}: not a DeepNets-1M meta JSON ({e})") from e
        if split is None:
            split = next(iter(meta)) if len(meta) == 1 else "val"
        if split not in meta:
            raise DataError(f"{self.meta_path} has no split {split!r}; it has {', '.join(meta)}")
        self.split = split
        self.nets: list[dict[str, Any]] = meta[split]["nets"]
        tables = meta[split]["meta"]
        # map the file's own ids to current vocabulary ids once (also validates every name)
        prims = {int(k): v for k, v in tables["primitives_ext"].items()}
        self._op_ids = np.zeros(max(prims) + 1, dtype=np.int64)
        self._op_names: dict[int, str] = {}
        for k, name in prims.items():
            self._op_ids[k] = OP_ID[canonical_op_name(name)]
            self._op_names[k] = canonical_op_name(name)
        self._raw_names = {int(k): v for k, v in tables["unique_op_names"].items()}
        self._h5: Any = None

    def __len__(self) -> int:
        return len(self.nets)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_h5": None}  # h5py handles cannot be pickled; each worker opens its own

    def _file(self) -> Any:
        if self._h5 is None:
            import h5py

            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as e:
                raise DataError(f"cannot open {self.path} as HDF5 ({e}); the file may be truncated") from e
        return self._h5

    def net_args(self, index: int) -> dict[str, Any]:
        """The stored ``net_args`` of architecture ``index`` (a copy)."""
        return json.loads(json.dumps(self.nets[index]))

    def build_network(
        self, index: int, num_classes: int = 10, C: int | None = None, light: bool = False, **kwargs: Any
    ) -> nn.Module:
        """Rebuilds architecture ``index`` (width ``C``, else ``net_args["C"]``, else the reader's ``C``).

        Args:
            index: architecture index.
            num_classes: classifier outputs.
            C: width override.
            light: skip random init (see :func:`hyperzoo.nets.deepnets1m.build_network`).
            **kwargs: other ``build_network`` arguments (``is_imagenet_input``, ``device``, ...).
        """
        from hyperzoo.nets.deepnets1m import build_network

        args = self.nets[index]
        width = C if C is not None else int(args.get("C", self.C))
        return build_network(args, C=width, num_classes=num_classes, light=light, **kwargs)

    def __getitem__(self, index: int) -> ArchGraph:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} nets of {self.path.name}:{self.split}")
        if self.rebuild:
            from hyperzoo.graphs.from_module import graph_from_module

            net = self.build_network(index, light=True)
            graph = graph_from_module(net, input_size=32, s_max=self.s_max, name=f"deepnets1m/{self.split}/{index}")
            graph.net_args, graph.net_idx = self.net_args(index), index
            return graph
        try:
            group = self._file()[self.split][str(index)]
            adj = group["adj"][()]
            nodes = group["nodes"][()].astype(np.int64)
        except KeyError as e:
            raise DataError(f"{self.path}: missing {self.split}/{index} ({e}); the file may be truncated") from e
        n = adj.shape[0]
        if nodes.shape != (n, 3):
            raise DataError(f"{self.path}: {self.split}/{index} has {nodes.shape[0]} nodes for a {n}x{n} matrix")
        op = torch.from_numpy(self._op_ids[nodes[:, 0]])
        names = [_param_name(self._raw_names[int(k)], int(c), self._op_names[int(p)]) for p, c, k in nodes.tolist()]
        dist = torch.from_numpy(adj.astype(np.int64))
        dist[dist > self.s_max] = 0
        idx = dist.nonzero()  # row-major: edges sorted by (src, dst)
        graph = ArchGraph(
            op=op,
            param_names=names,
            shape=torch.zeros(n, 4, dtype=torch.long),
            edge_index=idx.t().contiguous(),
            edge_dist=dist[idx[:, 0], idx[:, 1]],
            name=f"deepnets1m/{self.split}/{index}",
            s_max=self.s_max,
        )
        graph.num_nodes = n
        graph.net_args = self.net_args(index)
        graph.net_idx = index
        if self.shapes:
            attach_shapes(graph, self.build_network(index, device="meta"))
        else:
            pools = (op == OP_ID["max_pool"]) | (op == OP_ID["avg_pool"])
            graph.shape[pools] = torch.tensor(_POOL_SHAPE)
        return graph
