"""hyperzoo's HDF5 graph store: many :class:`ArchGraph` objects in flat arrays with offsets.

Layout (``format_version`` 2)::

    attrs:    format_version, title, vocabulary (op names in id order), s_max, num_graphs, checksum ("crc32"),
              header_crc32 (CRC-32 of node_ptr, edge_ptr and the vocabulary), + user metadata
    op          int16   [sum N]        node op ids (in the file's vocabulary)
    shape       int32   [sum N, 4]     4-D shape encodings
    edge_index  int32   [2, sum E]     graph-local node ids, sorted by (src, dst) within a graph
    edge_dist   uint8   [sum E]        1 real edge, 2..s_max virtual edge
    node_ptr    int64   [G + 1]        graph g's nodes are node_ptr[g]:node_ptr[g+1]
    edge_ptr    int64   [G + 1]        graph g's edges are edge_ptr[g]:edge_ptr[g+1]
    param_names str     [G]            newline-joined parameter names of a graph's nodes
    name        str     [G]            graph names
    net_args    str     [G]            JSON net_args that rebuild each network ("{}" if none)
    crc32       uint32  [G]            CRC-32 of graph g's stored bytes (op, shape, edge_index, edge_dist slices,
                                       then the UTF-8 param_names, name, net_args), as written

Integrity: a reader checks ``header_crc32`` on opening and a graph's ``crc32`` the first time it reads that graph
(in each process), so flipped bytes anywhere in a graph's data are a :class:`~hyperzoo.errors.DataError` naming the
graph and how to regenerate the store, not silently different distances. CRC-32 (zlib) runs at several GB/s: a
graph of a few thousand edges adds microseconds to a read of ~0.1 ms. Version-1 stores (no checksums) still load,
with a one-time warning.

Flat arrays plus offsets read a graph with four slices, where a group per graph (the DeepNets-1M layout) pays
HDF5 metadata costs per graph. Hot arrays are chunked (~64-128 KB chunks, so a graph touches one or two) and
``lzf``-compressed by default: on random access that measured 0.17 ms/graph against 1.25 ms for gzip with
the default chunk cache (``reference/style_ecosystem.md`` 2.3); ``compression=None`` is fastest and largest.
Readers open with a 64 MB chunk cache for shuffled access.

Uncompressed stores (``compression=None``, ``hyperzoo graphs generate --compression none``) are finalised in a
*contiguous* layout (attribute ``layout = "contiguous"``): every array unchunked, and the three string arrays also
as UTF-8 bytes with offsets (``<name>_bytes`` uint8, ``<name>_ptr`` int64 [G + 1]). Readers memory-map such a file
(``numpy.memmap`` at each dataset's byte offset), so a random read is a few array slices from the page cache,
shared by every DataLoader worker, whatever the store's size; the string datasets stay for other readers.

The writer is atomic: it writes ``<path>.tmp`` and renames it over ``path`` on :meth:`GraphStoreWriter.close`,
so a killed writer never leaves a half-written store under the final name.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperzoo.errors import DataError
from hyperzoo.graphs.arch_graph import ArchGraph
from hyperzoo.graphs.vocabulary import OP_ID, PRIMITIVES, canonical_op_name
from hyperzoo.io import crc32

__all__ = ["FORMAT_VERSION", "GraphStore", "GraphStoreWriter", "upgrade_store", "write_graphs"]

FORMAT_VERSION = 2  # 2: per-graph CRC-32 checksums (version 1 stores still load, unverified)
TITLE = "hyperzoo graph store"
# stores up to this size are read whole into memory on first access (per worker) unless told otherwise
IN_MEMORY_BYTES = 256 << 20
_ARRAYS = ("op", "shape", "edge_index", "edge_dist", "param_names", "name", "net_args")
_CHUNK_NODES = 8192  # rows of op/shape per chunk
_CHUNK_EDGES = 16384  # columns of edge_index per chunk (2 x 16384 int32 = 128 KB)
_NUMERIC = ("op", "shape", "edge_index", "edge_dist")
_STRINGS = ("param_names", "name", "net_args")
_UNVERIFIED_WARNED: set[str] = set()  # stores without checksums already warned about in this process


def _graph_crc(op: Any, shape: Any, edge_index: Any, edge_dist: Any, names: Any, name: Any, net_args: Any) -> int:
    """CRC-32 of one graph's stored arrays (file dtypes) and UTF-8 strings, in a fixed order."""
    return crc32(op, shape, edge_index, edge_dist, _raw(names), _raw(name), _raw(net_args))


def _raw(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


def _header_crc(node_ptr: np.ndarray, edge_ptr: np.ndarray, vocabulary: str) -> int:
    return crc32(node_ptr.astype(np.int64), edge_ptr.astype(np.int64), vocabulary)


def _h5py() -> Any:
    import h5py

    return h5py


class GraphStoreWriter:
    """Appends graphs to a new store, atomically.

    Args:
        path: the store to create (replaced on :meth:`close`; an existing file stays until then).
        compression: ``"lzf"`` (default), ``"gzip"`` or ``None``.
        flush_every: graphs buffered in memory before they are appended to the file.
        attrs: extra file attributes (JSON-serialisable values are stored as JSON strings if not scalars).

    Use as a context manager; an exception inside the block discards the temporary file.
    """

    def __init__(
        self,
        path: str | Path,
        compression: str | None = "lzf",
        flush_every: int = 256,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        h5py = _h5py()
        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = h5py.File(self.tmp_path, "w")
        self._contiguous = compression is None
        self._flush_every = flush_every
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, str, str, int]] = []
        self._n_graphs = self._n_nodes = self._n_edges = 0
        self._s_max = 0
        f, s = self._f, h5py.string_dtype()
        kw: dict[str, Any] = {"compression": compression} if compression else {}
        f.create_dataset("op", (0,), np.int16, maxshape=(None,), chunks=(_CHUNK_NODES,), **kw)
        f.create_dataset("shape", (0, 4), np.int32, maxshape=(None, 4), chunks=(_CHUNK_NODES, 4), **kw)
        f.create_dataset("edge_index", (2, 0), np.int32, maxshape=(2, None), chunks=(2, _CHUNK_EDGES), **kw)
        f.create_dataset("edge_dist", (0,), np.uint8, maxshape=(None,), chunks=(4 * _CHUNK_EDGES,), **kw)
        for name in ("node_ptr", "edge_ptr"):
            f.create_dataset(name, (1,), np.int64, maxshape=(None,), chunks=(4096,), data=[0])
        for name in ("param_names", "name", "net_args"):
            f.create_dataset(name, (0,), s, maxshape=(None,), chunks=(1024,), **kw)
        f.create_dataset("crc32", (0,), np.uint32, maxshape=(None,), chunks=(4096,))
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["title"] = TITLE
        f.attrs["vocabulary"] = json.dumps(list(PRIMITIVES))
        f.attrs["checksum"] = "crc32"
        for k, v in (attrs or {}).items():
            f.attrs[k] = v if isinstance(v, (int, float, str, np.integer)) else json.dumps(v)

    def __enter__(self) -> GraphStoreWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __len__(self) -> int:
        return self._n_graphs + len(self._buffer)

    def append(self, graph: ArchGraph, net_args: Mapping[str, Any] | None = None) -> None:
        """Adds one graph (and the ``net_args`` that rebuild its network; default ``graph.net_args``)."""
        if net_args is None:
            net_args = getattr(graph, "net_args", None) or {}
        n = int(graph.num_nodes)
        names = list(graph.param_names)
        if any("\n" in s for s in names):
            raise DataError(f"graph {graph.name!r}: parameter names must not contain newlines")
        dist = graph.edge_dist.numpy()
        if dist.size and int(dist.max()) > 255:
            raise DataError(f"graph {graph.name!r}: edge distances above 255 do not fit the store's uint8")
        self._s_max = max(self._s_max, int(getattr(graph, "s_max", 0) or 0))
        row = (
            graph.op.numpy().astype(np.int16),
            graph.shape.numpy().astype(np.int32).reshape(n, 4),
            graph.edge_index.numpy().astype(np.int32).reshape(2, -1),
            dist.astype(np.uint8),
            "\n".join(names),
            str(graph.name or ""),
            json.dumps(dict(net_args), sort_keys=True),
        )
        self._buffer.append((*row, _graph_crc(*row)))
        if len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Appends the buffered graphs to the (temporary) file."""
        if not self._buffer:
            return
        f = self._f
        ops, shapes, edges, dists, names, gnames, args, crcs = zip(*self._buffer)
        n_nodes = np.array([len(o) for o in ops], dtype=np.int64)
        n_edges = np.array([e.shape[1] for e in edges], dtype=np.int64)
        g0, g1 = self._n_graphs, self._n_graphs + len(ops)
        n0, n1 = self._n_nodes, self._n_nodes + int(n_nodes.sum())
        e0, e1 = self._n_edges, self._n_edges + int(n_edges.sum())
        for key, data, lo, hi, axis in (
            ("op", np.concatenate(ops), n0, n1, 0),
            ("shape", np.concatenate(shapes), n0, n1, 0),
            ("edge_index", np.concatenate(edges, axis=1), e0, e1, 1),
            ("edge_dist", np.concatenate(dists), e0, e1, 0),
            ("node_ptr", n0 + np.cumsum(n_nodes), g0 + 1, g1 + 1, 0),
            ("edge_ptr", e0 + np.cumsum(n_edges), g0 + 1, g1 + 1, 0),
            ("param_names", np.array(names, dtype=object), g0, g1, 0),
            ("name", np.array(gnames, dtype=object), g0, g1, 0),
            ("net_args", np.array(args, dtype=object), g0, g1, 0),
            ("crc32", np.array(crcs, dtype=np.uint32), g0, g1, 0),
        ):
            ds = f[key]
            ds.resize(hi, axis=axis)
            if axis == 0:
                ds[lo:hi] = data
            else:
                ds[:, lo:hi] = data
        self._n_graphs, self._n_nodes, self._n_edges = g1, n1, e1
        self._buffer.clear()

    def close(self) -> Path:
        """Writes the remaining graphs, finalises the attributes and renames the file into place."""
        self.flush()
        self._f.attrs["num_graphs"] = self._n_graphs
        self._f.attrs["s_max"] = self._s_max
        self._f.attrs["header_crc32"] = _header_crc(
            self._f["node_ptr"][()], self._f["edge_ptr"][()], self._f.attrs["vocabulary"]
        )
        self._f.close()
        if self._contiguous:
            staged = self.tmp_path.with_name(self.tmp_path.name + ".contiguous")
            try:
                _write_contiguous(self.tmp_path, staged)
                os.replace(staged, self.tmp_path)
            finally:
                staged.unlink(missing_ok=True)
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Discards everything written so far."""
        try:
            self._f.close()
        finally:
            self.tmp_path.unlink(missing_ok=True)


def _write_contiguous(src: Path, dst: Path) -> None:
    """Copies a finished chunked store into the memory-mappable contiguous layout (see the module docstring)."""
    h5py = _h5py()
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        for k, v in fin.attrs.items():
            fout.attrs[k] = v
        fout.attrs["layout"] = "contiguous"
        for key in (*_NUMERIC, "node_ptr", "edge_ptr", "crc32"):
            fout.create_dataset(key, data=fin[key][()])
        for key in _STRINGS:
            texts = [t if isinstance(t, bytes) else str(t).encode() for t in fin[key][()]]
            ptr = np.zeros(len(texts) + 1, dtype=np.int64)
            ptr[1:] = np.cumsum([len(t) for t in texts], dtype=np.int64)
            fout.create_dataset(key, data=np.array(texts, dtype=object), dtype=h5py.string_dtype())
            fout.create_dataset(f"{key}_bytes", data=np.frombuffer(b"".join(texts), dtype=np.uint8))
            fout.create_dataset(f"{key}_ptr", data=ptr)


class _ByteStrings:
    """``strings[i]`` of a memory-mapped UTF-8 byte array with offsets."""

    def __init__(self, data: np.ndarray, ptr: np.ndarray) -> None:
        self.data, self.ptr = data, ptr

    def __getitem__(self, i: int) -> str:
        return self.data[int(self.ptr[i]) : int(self.ptr[i + 1])].tobytes().decode()

    def __len__(self) -> int:
        return len(self.ptr) - 1


class GraphStore(torch.utils.data.Dataset):
    """A store written by :class:`GraphStoreWriter`, as a dataset of :class:`ArchGraph` objects.

    Offsets are read once in ``__init__`` (the file is closed again); the file itself opens lazily on the
    first ``__getitem__`` in each process, with a large chunk cache, so the dataset pickles cleanly into
    DataLoader workers (spawn included) and DDP processes.

    Args:
        path: the store.
        s_max: drop virtual edges longer than this (default: keep what the file has).
        rdcc_nbytes: HDF5 chunk cache per open file (64 MB keeps shuffled reads from re-decompressing chunks).

    Raises:
        DataError: missing, truncated or corrupt file, or a format version this hyperzoo cannot read.

    Each item is an ``ArchGraph`` with ``net_args`` (a dict) and ``index`` attached.
    """

    def __init__(
        self,
        path: str | Path,
        s_max: int | None = None,
        rdcc_nbytes: int = 64 << 20,
        in_memory: bool | None = None,
        verify: bool = True,
    ) -> None:
        self.path = Path(path)
        self.s_max = s_max
        self.rdcc_nbytes = rdcc_nbytes
        if not self.path.exists():
            raise DataError(f"graph store {self.path} not found; create it with `hyperzoo graphs generate`")
        self._arrays: dict[str, Any] | None = None
        h5py = _h5py()
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = {k: _attr(v) for k, v in f.attrs.items()}
                version = self.attrs.get("format_version")
                if self.attrs.get("title") != TITLE or version is None:
                    raise DataError(f"{self.path} is not a hyperzoo graph store (no format_version/title)")
                if int(version) > FORMAT_VERSION:
                    raise DataError(
                        f"{self.path} has store format_version {version}; this hyperzoo reads up to "
                        f"{FORMAT_VERSION}: upgrade hyperzoo or regenerate the file"
                    )
                self.node_ptr = f["node_ptr"][()]
                self.edge_ptr = f["edge_ptr"][()]
                self._crc = f["crc32"][()] if verify and "crc32" in f else None
                self.contiguous = self.attrs.get("layout") == "contiguous"
                self._offsets = (
                    {k: (f[k].id.get_offset(), f[k].dtype, f[k].shape) for k in self._mapped_keys()}
                    if self.contiguous
                    else {}
                )
                sizes = {k: f[k].shape for k in ("op", "shape", "edge_index", "edge_dist", "net_args")}
        except DataError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError) as e:  # h5py reports damage in several ways
            raise DataError(
                f"cannot read graph store {self.path} ({type(e).__name__}: {e}); the file is truncated or "
                "corrupt: delete it and run `hyperzoo graphs generate` again (it resumes from its parts if "
                "they exist)"
            ) from e
        n = len(self.node_ptr) - 1
        self._check_header(verify)
        expected = int(self.attrs.get("num_graphs", -1))
        consistent = (
            n == expected == len(self.edge_ptr) - 1 == sizes["net_args"][0]
            and sizes["op"][0] == self.node_ptr[-1] == sizes["shape"][0]
            and sizes["edge_index"][1] == self.edge_ptr[-1] == sizes["edge_dist"][0]
        )
        if not consistent:
            raise DataError(
                f"graph store {self.path} is inconsistent (num_graphs={expected}, offsets for {n} graphs, "
                f"{sizes}); it was not closed properly: delete it and regenerate"
            )
        # a contiguous store is memory-mapped (random reads from the page cache, any size); a chunked one that fits
        # comfortably in RAM is read whole on first access: a graph is then a few numpy slices instead of seven
        # h5py reads (measured 4.4 ms -> well under 1 ms per graph on 100-graph stores)
        if in_memory is None:
            in_memory = not self.contiguous and self.path.stat().st_size <= IN_MEMORY_BYTES
        self.in_memory = in_memory
        try:
            vocab = json.loads(self.attrs["vocabulary"])
            # ids in the file -> current ids, by name, so stores survive vocabulary extensions
            self._op_map = np.array([OP_ID[canonical_op_name(v)] for v in vocab], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"graph store {self.path}: unreadable op vocabulary ({e}); {self.regenerate_hint()}") from e
        self._h5: Any = None
        self._verified = np.zeros(n if self._crc is not None else 0, dtype=bool)

    def regenerate_hint(self) -> str:
        """What to do about a corrupt store: the ``hyperzoo graphs generate`` command that rebuilds it."""
        split = self.attrs.get("split") if hasattr(self, "attrs") else None
        if split:
            num = self.attrs.get("num_graphs_req") or self.attrs.get("num_graphs")
            cells = self.attrs.get("max_cells", -1)
            return (
                f"the file is corrupt: delete it and regenerate it with `hyperzoo graphs generate --split {split} "
                f"--num {num} --seed {self.attrs.get('seed', 0)} --s-max {self.attrs.get('s_max')}"
                f"{f' --max-cells {cells}' if cells not in (None, -1) else ''} --out {self.path}`"
            )
        return "the file is corrupt: delete it and write it again (e.g. `hyperzoo graphs generate`)"

    def _check_header(self, verify: bool) -> None:
        """Offsets and vocabulary against ``header_crc32``; a one-time warning for stores without checksums."""
        if not verify:
            return
        if self._crc is None:
            key = str(self.path.resolve())
            if key not in _UNVERIFIED_WARNED:
                _UNVERIFIED_WARNED.add(key)
                warnings.warn(
                    f"graph store {self.path} (format_version {self.attrs.get('format_version')}) has no checksums, "
                    "so corruption cannot be detected; add them with `hyperzoo.graphs.store.upgrade_store(path)` (same "
                    "graphs, rewritten) or regenerate it",
                    UserWarning,
                    stacklevel=3,
                )
            return
        expected = self.attrs.get("header_crc32")
        got = _header_crc(self.node_ptr, self.edge_ptr, str(self.attrs.get("vocabulary")))
        if expected is None or int(expected) != got or len(self._crc) != len(self.node_ptr) - 1:
            raise DataError(
                f"graph store {self.path}: its offsets or vocabulary fail their checksum; {self.regenerate_hint()}"
            )

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_h5": None, "_arrays": None}

    def _file(self) -> Any:
        if self._h5 is None:
            self._h5 = _h5py().File(self.path, "r", rdcc_nbytes=self.rdcc_nbytes, rdcc_nslots=100_003)
        return self._h5

    @staticmethod
    def _mapped_keys() -> tuple[str, ...]:
        return (*_NUMERIC, *(f"{k}_{part}" for k in _STRINGS for part in ("bytes", "ptr")))

    def _memory_map(self) -> dict[str, Any]:
        arrays: dict[str, Any] = {}
        try:
            for key, (offset, dtype, shape) in self._offsets.items():
                if offset is None:  # an empty dataset has no storage
                    arrays[key] = np.zeros(shape, dtype=dtype)
                else:
                    arrays[key] = np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape)
        except (OSError, ValueError) as e:
            raise DataError(f"{self.path} cannot be memory-mapped ({e}); the file is truncated: regenerate it") from e
        for key in _STRINGS:
            arrays[key] = _ByteStrings(arrays.pop(f"{key}_bytes"), arrays.pop(f"{key}_ptr"))
        return arrays

    def _source(self) -> Any:
        """Where graphs are sliced from: memory maps, the open file, or (``in_memory``) its arrays read once."""
        if self.contiguous and not self.in_memory:
            if self._arrays is None:
                self._arrays = self._memory_map()
            return self._arrays
        if not self.in_memory:
            return self._file()
        if self._arrays is None:
            f = self._file()
            try:
                self._arrays = {k: f[k][()] for k in _ARRAYS}
            except (OSError, RuntimeError, ValueError, KeyError) as e:
                raise DataError(f"{self.path} is unreadable ({e}); {self.regenerate_hint()}") from e
            self._h5.close()
            self._h5 = None
        return self._arrays

    def net_args(self, index: int) -> dict[str, Any]:
        """The stored ``net_args`` of graph ``index``."""
        return json.loads(_text(self._source()["net_args"][index]))

    def __getitem__(self, index: int) -> ArchGraph:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} graphs in {self.path}")
        index %= len(self)
        f = self._source()
        n0, n1 = int(self.node_ptr[index]), int(self.node_ptr[index + 1])
        e0, e1 = int(self.edge_ptr[index]), int(self.edge_ptr[index + 1])
        try:
            raw = (
                f["op"][n0:n1],
                f["shape"][n0:n1],
                f["edge_index"][:, e0:e1],
                f["edge_dist"][e0:e1],
                f["param_names"][index],
                f["name"][index],
                f["net_args"][index],
            )
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            raise DataError(f"{self.path}: graph {index} is unreadable ({e}); {self.regenerate_hint()}") from e
        if self._crc is not None and not self._verified[index]:
            if _graph_crc(*raw) != int(self._crc[index]):
                raise DataError(
                    f"graph store {self.path}: graph {index} ({_text(raw[5])[:60]!r}) fails its CRC-32 checksum; "
                    f"{self.regenerate_hint()}"
                )
            self._verified[index] = True
        try:
            op = torch.from_numpy(self._op_map[raw[0]])
            shape = torch.from_numpy(raw[1].astype(np.int64))
            edge_index = torch.from_numpy(raw[2].astype(np.int64))
            edge_dist = torch.from_numpy(raw[3].astype(np.int64))
            names, name = _text(raw[4]), _text(raw[5])
            net_args = json.loads(_text(raw[6]))
        except (IndexError, ValueError, UnicodeDecodeError) as e:  # only possible in an unverified store
            raise DataError(f"{self.path}: graph {index} is corrupt ({e}); {self.regenerate_hint()}") from e
        if self.s_max is not None:
            keep = edge_dist <= self.s_max
            edge_index, edge_dist = edge_index[:, keep], edge_dist[keep]
        graph = ArchGraph(
            op=op,
            param_names=names.split("\n") if n1 > n0 else [],
            shape=shape,
            edge_index=edge_index,
            edge_dist=edge_dist,
            name=name,
            s_max=self.s_max or int(self.attrs.get("s_max", 0)),
        )
        graph.num_nodes = n1 - n0
        graph.net_args = net_args
        graph.index = index
        return graph

    def num_nodes(self) -> np.ndarray:
        """Node count of every graph (for samplers that bound the nodes per meta-batch)."""
        return np.diff(self.node_ptr)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_graphs(path: str | Path, graphs: Sequence[ArchGraph], **kwargs: Any) -> Path:
    """Writes ``graphs`` (and their ``net_args`` attributes) to a new store via :class:`GraphStoreWriter`."""
    with GraphStoreWriter(path, **kwargs) as w:
        for g in graphs:
            w.append(g)
    return Path(path)


_DERIVED_ATTRS = {"format_version", "title", "vocabulary", "num_graphs", "s_max", "layout", "checksum", "header_crc32"}


def upgrade_store(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrites a store in the current format (adds checksums to a version-1 store), keeping its graphs and layout.

    Args:
        path: the store to read.
        out: where to write (default: replace ``path``, atomically).

    Returns:
        The written path.
    """
    src = GraphStore(path, verify=False, in_memory=True)
    with _h5py().File(src.path, "r") as f:
        compression = None if src.contiguous else f["op"].compression
    attrs = {k: v for k, v in src.attrs.items() if k not in _DERIVED_ATTRS}
    with GraphStoreWriter(out or src.path, compression=compression, attrs=attrs) as w:
        for i in range(len(src)):
            g = src[i]
            w.append(g, g.net_args)
    return Path(out or src.path)
