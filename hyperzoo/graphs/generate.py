"""Generation of DeepNets-1M-style graph datasets: multi-process, atomic and resumable.

``generate_split("train", 100_000, "graphs/train.h5", workers=4)`` walks the split's candidate stream
(:func:`hyperzoo.nets.deepnets1m.candidate`: candidate ``j`` is a pure function of the split, the seed and
``j``). Workers take blocks of candidate indices, sample each, build the CIFAR variant without weight init,
build its graph with :func:`~hyperzoo.graphs.graph_from_module` and return the accepted ones; the parent
consumes blocks in order, drops duplicates (by architecture hash) and writes.

Resumability: the parent commits progress in *parts*, each a complete graph store written atomically
(``<out>.parts/part-000012.h5``, renamed into place when full) that records the candidate index to continue
from. A kill (even SIGKILL) loses at most the part being filled; a restart reads the finished parts (their
graphs and hashes), continues the stream at the recorded candidate, and regenerates exactly the missing
graphs. When all graphs exist the parts are merged into ``out`` (again via a temporary file) and deleted.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from hyperzoo._procs import DeferredInterrupt, init_pool_worker
from hyperzoo.errors import ConfigError, DataError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph
from hyperzoo.graphs.store import GraphStore, GraphStoreWriter

__all__ = ["candidate_blocks", "generate_split", "strip_for_store"]


def _block_size(split: str) -> int:
    """Candidates per worker task: enough for about two accepted nets.

    Evaluation splits, whose hash bucket rejects 255 of 256 draws cheaply, then batch many draws per
    inter-process round trip, and train wastes little work when the run ends.
    """
    from hyperzoo.nets.deepnets1m import NUM_BUCKETS, get_split

    buckets = len(get_split(split).buckets)
    return 4 if split == "predefined" or not buckets else max(4, 2 * NUM_BUCKETS // buckets)


def _init_worker() -> None:
    import torch

    # one thread per worker: the workers are the parallelism, and small convs gain nothing from threads
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)


def _make_block(
    split: str, seed: int, start: int, stop: int, s_max: int, max_cells: int | None
) -> list[tuple[int, dict[str, Any], ArchGraph]]:
    """Accepted candidates ``start..stop-1`` of a split, with their graphs (runs in a worker)."""
    from hyperzoo.graphs.from_module import graph_from_module
    from hyperzoo.nets.deepnets1m import build_network, candidate, predefined_net_args

    out = []
    for j in range(start, stop):
        if split == "predefined":
            fixed = predefined_net_args()
            args = fixed[j] if j < len(fixed) else None
        else:
            args = candidate(split, j, seed, max_cells=max_cells)
        if args is None:
            continue
        net = build_network(args, C=args.get("C", 32), num_classes=10, light=True)
        try:
            graph = graph_from_module(net, input_size=32, s_max=s_max, meta=False)  # small nets: real is cheaper
        except Exception:  # a disconnected or otherwise unbuildable graph rejects the candidate, as in ppuda
            continue
        args = {**args, "num_nodes": int(graph.num_nodes)}
        out.append((j, args, strip_for_store(graph)))
    return out


def strip_for_store(graph: ArchGraph) -> ArchGraph:
    """A copy of ``graph`` with only what a graph store holds (smaller pickles between worker processes)."""
    return ArchGraph(
        op=graph.op,
        param_names=list(graph.param_names),
        shape=graph.shape,
        edge_index=graph.edge_index,
        edge_dist=graph.edge_dist,
        name="",
        s_max=graph.s_max,
        num_nodes=int(graph.num_nodes),
    )


def candidate_blocks(
    split: str,
    seed: int,
    start: int,
    s_max: int,
    max_cells: int | None,
    workers: int,
    make: Any = None,
    block: int | None = None,
) -> Iterator[list[tuple[int, dict[str, Any], ArchGraph]]]:
    """Blocks of accepted candidates from ``start`` on, in stream order, computed ``workers``-parallel.

    ``make`` (default :func:`_make_block`) and ``block`` (candidates per task) let other streams (architecture
    spaces, :mod:`hyperzoo.graphs.generate_space`) share the worker pool.
    """
    make = _make_block if make is None else make
    block = _block_size(split) if block is None else block
    if workers <= 0:
        _init_worker()
        j = start
        while True:
            yield make(split, seed, j, j + block, s_max, max_cells)
            j += block
    # spawn, not fork: forking a process that already ran torch ops can deadlock in the children
    # workers exit with the parent (no orphans after a kill -9) and leave Ctrl-C to it (hyperzoo._procs)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=init_pool_worker,
        initargs=("hyperzoo.graphs.generate:_init_worker",),
    )
    pending: deque[Future] = deque()
    j = start
    try:
        with DeferredInterrupt() as ctrl_c:  # Ctrl-C stops between blocks, never inside a finalizer
            while True:
                while len(pending) < 2 * workers:  # a short queue keeps workers busy and bounds wasted work
                    pending.append(pool.submit(make, split, seed, j, j + block, s_max, max_cells))
                    j += block
                future = pending.popleft()
                while not wait([future], timeout=0.2).done:
                    ctrl_c.check()
                ctrl_c.check()
                yield future.result()
    finally:
        workers_left = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers_left:  # their blocks are not needed: do not make Ctrl-C wait for them
            process.terminate()


def _read_parts(parts_dir: Path, meta: dict[str, Any]) -> tuple[list[Path], int, int, set[str]]:
    """Finished parts, graphs in them, the candidate to continue from and the hashes seen."""
    for stale in parts_dir.glob("*.tmp"):  # a part being written when the run was killed
        stale.unlink()
    parts = sorted(parts_dir.glob("part-*.h5"))
    done, cursor = 0, 0
    seen: set[str] = set()
    for p in parts:
        store = GraphStore(p)
        stored = {k: store.attrs.get(k) for k in meta}
        if stored != meta:
            raise DataError(f"{p} was generated with {stored}, not {meta}; delete {parts_dir} or write to another file")
        done += len(store)
        cursor = int(store.attrs["next_candidate"])
        seen.update(store.net_args(i)["hash"] for i in range(len(store)))
    return parts, done, cursor, seen


def generate_split(
    split: str,
    num: int,
    out: str | Path,
    workers: int = 0,
    seed: int = 0,
    s_max: int = DEFAULT_S_MAX,
    part_size: int = 256,
    max_cells: int | None = None,
    compression: str | None = "lzf",
    progress: bool = True,
) -> Path:
    """Generates (or resumes generating) ``num`` graphs of a DeepNets-1M split into a graph store.

    Args:
        split: a split of :data:`hyperzoo.nets.deepnets1m.SPLITS`.
        num: number of graphs (``predefined`` has 2).
        out: the store to write; ``<out>.parts/`` holds progress until the end.
        workers: worker processes (0: in this process).
        seed: base seed of the split's candidate stream.
        s_max: longest virtual edge kept.
        part_size: graphs per committed part (at most this many are redone after a kill).
        max_cells: cap on cells per network (small, fast nets for tests and demos; changes the split).
        compression: of the final store (``"lzf"`` or ``None``).
        progress: show a tqdm progress bar.

    Returns:
        ``out``.

    Raises:
        ConfigError: bad arguments. DataError: existing parts from a different configuration.
    """
    from hyperzoo.nets.deepnets1m import get_split

    get_split(split)  # validates the name
    if split == "predefined":
        num = min(num, 2)
    meta = {"split": split, "seed": seed, "s_max": s_max, "max_cells": -1 if max_cells is None else max_cells}
    return run_generation(
        out,
        num,
        meta,
        lambda cursor: candidate_blocks(split, seed, cursor, s_max, max_cells, workers),
        name_prefix=f"deepnets1m/{split}",
        label=split,
        compression=compression,
        progress=progress,
        part_size=part_size,
    )


def run_generation(
    out: str | Path,
    num: int,
    meta: dict[str, Any],
    blocks: Callable[[int], Iterator[list[tuple[int, dict[str, Any], ArchGraph]]]],
    name_prefix: str,
    label: str,
    compression: str | None = "lzf",
    progress: bool = True,
    part_size: int = 256,
    reject: frozenset[str] = frozenset(),
) -> Path:
    """The resumable generation loop shared by DeepNets-1M splits and architecture spaces.

    Candidates come in blocks of ``(candidate index, net_args with a "hash", graph)`` from ``blocks(cursor)``, the
    stream restarted at the first candidate no committed part has seen. Graphs whose hash is in ``reject`` (held-out
    networks) or already stored are skipped; every ``part_size`` graphs a part is committed under
    ``<out>.parts/``, and the parts are merged into ``out`` at the end (a killed run redoes one part at most).

    Args:
        out: the store to write.
        num: graphs wanted.
        meta: the settings that define the stream (stored as attributes; parts from other settings are refused).
        blocks: the candidate stream from a cursor.
        name_prefix: graphs are named ``<name_prefix>/<index>``.
        label: the progress bar's name.
        compression: of the final store.
        progress: show a tqdm progress bar.
        part_size: graphs per committed part.
        reject: graph hashes never stored (counted in the store's ``holdout_rejected_last_run``).

    Returns:
        ``out``.
    """
    if num < 1 or part_size < 1:
        raise ConfigError(f"num={num}, part_size={part_size}: both must be positive")
    out = Path(out)
    parts_dir = out.with_name(out.name + ".parts")
    if _finished_store(out, parts_dir, num, meta):
        return out
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts, done, cursor, seen = _read_parts(parts_dir, meta)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num, initial=done, desc=f"{label} graphs", unit="graph", dynamic_ncols=True)
    t0 = time.perf_counter()
    stream = blocks(cursor) if done < num else iter(())
    try:
        made, rejected = _store_stream(
            stream, num, done, parts, parts_dir, seen, reject, part_size, meta, name_prefix, bar
        )
    finally:
        if hasattr(stream, "close"):
            stream.close()  # stops the worker pool
        if bar is not None:
            bar.close()
    rate = made / max(time.perf_counter() - t0, 1e-9)
    extra = {"graphs_per_s_last_run": round(rate, 3), "num_graphs_req": num}
    if reject:
        extra["holdout_rejected_last_run"] = rejected
    _merge(parts, out, meta, compression, extra, limit=num)  # parts of an earlier, longer request may hold more
    shutil.rmtree(parts_dir)
    return out


def _finished_store(out: Path, parts_dir: Path, num: int, meta: dict[str, Any]) -> bool:
    """Whether ``out`` is a finished store of at least ``num`` graphs with settings ``meta``.

    Raises:
        DataError: ``out`` exists, no run is in progress (no ``parts_dir``), and it holds fewer graphs or was
            generated with other settings.
    """
    if out.exists() and not parts_dir.exists():
        store = GraphStore(out)
        if len(store) >= num and all(store.attrs.get(k) == v for k, v in meta.items()):
            return True
        raise DataError(f"{out} exists (different settings or fewer graphs); delete it or write to another path")
    return False


def _store_stream(
    stream: Iterator[list[tuple[int, dict[str, Any], ArchGraph]]],
    num: int,
    done: int,
    parts: list[Path],
    parts_dir: Path,
    seen: set[str],
    reject: frozenset[str],
    part_size: int,
    meta: dict[str, Any],
    name_prefix: str,
    bar: Any,
) -> tuple[int, int]:
    """Commits new graphs of ``stream`` in parts of ``part_size`` until ``num`` graphs are stored in all.

    ``done`` graphs are already in ``parts`` (appended to in place) and ``seen`` holds their hashes (updated
    in place); rejected and already seen graphs are skipped, and ``bar`` (a tqdm bar or None) counts new ones.

    Returns:
        The graphs stored and the graphs rejected in this run.
    """
    made, rejected = 0, 0
    buffer: list[tuple[int, dict[str, Any], ArchGraph]] = []
    for block in stream:
        for j, args, graph in block:
            if args["hash"] in reject:
                rejected += 1
                continue
            if args["hash"] in seen:
                continue
            seen.add(args["hash"])
            buffer.append((j, args, graph))
            made += 1
            if bar is not None:
                bar.update(1)
            if len(buffer) == part_size or done + len(buffer) == num:
                parts.append(_write_part(parts_dir, len(parts), buffer, done, meta, name_prefix))
                done += len(buffer)
                buffer = []
            if done == num:
                return made, rejected
    return made, rejected


def _write_part(
    parts_dir: Path,
    k: int,
    buffer: list[tuple[int, dict[str, Any], ArchGraph]],
    first: int,
    meta: dict[str, Any],
    name_prefix: str,
) -> Path:
    path = parts_dir / f"part-{k:06d}.h5"
    attrs = {**meta, "next_candidate": buffer[-1][0] + 1, "first_graph": first}
    with GraphStoreWriter(path, compression=None, attrs=attrs) as w:
        for i, (j, args, graph) in enumerate(buffer):
            graph.name = f"{name_prefix}/{first + i}"
            w.append(graph, {**args, "candidate": j})
    return path


def _merge(
    parts: list[Path],
    out: Path,
    meta: dict[str, Any],
    compression: str | None,
    extra: dict[str, Any],
    limit: int | None = None,
) -> None:
    """Concatenates the parts into ``out`` (atomically, through ``<out>.tmp``), at most ``limit`` graphs."""
    attrs = {**meta, **extra, "generator": "hyperzoo.graphs.generate", "num_parts": len(parts)}
    with GraphStoreWriter(out, compression=compression, attrs=attrs) as w:
        for p in parts:
            store = GraphStore(p)
            for i in range(len(store)):
                if limit is not None and len(w) >= limit:
                    return
                g = store[i]
                w.append(g, g.net_args)
