"""Generation of architecture-family graph datasets (``hyperzoo graphs generate --space NAME``).

Same store, same resumability as :func:`hyperzoo.graphs.generate.generate_split` (parts committed atomically,
a restart continues at the recorded candidate): candidate ``j`` of a space is drawn with
``random.Random(draw_seed(seed, j))``, so the stream is a pure function of the space, the seed and ``j``. Each
network is built structure-only (``meta`` device, no weight init), traced with
:func:`~hyperzoo.graphs.graph_from_module`, hashed with :func:`~hyperzoo.graphs.graph_hash.graph_hash`; duplicates
and graphs equal to one of the space's held-out networks are dropped.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph

__all__ = ["draw_seed", "generate_space", "holdout_hashes", "space_candidate"]


def draw_seed(seed: int, j: int) -> int:
    """The RNG seed of candidate ``j`` of a stream with base ``seed``."""
    return int.from_bytes(hashlib.sha1(f"space:{seed}:{j}".encode()).digest()[:8], "little")


def _graph(net: Any, input_size: int, s_max: int) -> ArchGraph:
    from hyperzoo.graphs.from_module import graph_from_module

    return graph_from_module(net, input_size=input_size, s_max=s_max, meta=True)


def space_candidate(space: str, j: int, seed: int = 0, s_max: int = DEFAULT_S_MAX) -> tuple[dict[str, Any], ArchGraph]:
    """Candidate ``j`` of a space: its ``net_args`` (with ``space``, ``draw_seed``, ``hash``, ``num_nodes``), graph.

    Args:
        space: the space's name.
        j: candidate index.
        seed: base seed of the stream.
        s_max: longest virtual edge kept.
    """
    import torch

    from hyperzoo.graphs.graph_hash import graph_hash
    from hyperzoo.nets.deepnets1m import skip_init
    from hyperzoo.nets.spaces import get_space

    sp = get_space(space)
    s = draw_seed(seed, j)
    with torch.device("meta"), skip_init():
        net, args = sp.sample(random.Random(s))
    graph = _graph(net, sp.input_size, s_max)
    net_args = {"space": space, **args, "draw_seed": s, "hash": graph_hash(graph), "num_nodes": int(graph.num_nodes)}
    return net_args, graph


def holdout_hashes(space: str) -> dict[str, str]:
    """``{held-out name: graph hash}`` of a space's held-out networks (10 classes, the space's input size)."""
    import torch

    from hyperzoo.graphs.graph_hash import graph_hash
    from hyperzoo.nets.deepnets1m import skip_init
    from hyperzoo.nets.spaces import get_space

    sp = get_space(space)
    out = {}
    for name in sp.holdout:
        with torch.device("meta"), skip_init():
            net = sp.holdout_module(name)
        out[name] = graph_hash(_graph(net, sp.input_size, 1))
    return out


def _make_block(
    space: str, seed: int, start: int, stop: int, s_max: int, _unused: Any = None
) -> list[tuple[int, dict[str, Any], ArchGraph]]:
    from hyperzoo.graphs.generate import _strip

    out = []
    for j in range(start, stop):
        try:
            args, graph = space_candidate(space, j, seed, s_max)
        except ConfigError:
            raise
        except Exception:  # an unbuildable draw is rejected, as in generate_split
            continue
        out.append((j, args, _strip(graph)))
    return out


def generate_space(
    space: str,
    num: int,
    out: str | Path,
    workers: int = 0,
    seed: int = 0,
    s_max: int = DEFAULT_S_MAX,
    part_size: int = 256,
    compression: str | None = "lzf",
    progress: bool = True,
    holdout: bool = True,
) -> Path:
    """Generates (or resumes generating) ``num`` graphs of an architecture space into a graph store.

    Args:
        space: a registered space (:func:`hyperzoo.nets.spaces.list_spaces`) or ``"module:callable"``.
        num: number of graphs.
        out: the store to write; ``<out>.parts/`` holds progress until the end.
        workers: worker processes (0: in this process; a space registered only in ``__main__`` needs 0).
        seed: base seed of the candidate stream.
        s_max: longest virtual edge kept.
        part_size: graphs per committed part (at most this many are redone after a kill).
        compression: of the final store (``"lzf"`` or ``None``).
        progress: show a tqdm progress bar.
        holdout: drop graphs equal to the space's held-out networks (default; the store records their names).

    Returns:
        ``out``.

    Raises:
        ConfigError: bad arguments or an unknown space. DataError: existing parts from other settings.
    """
    import time

    from hyperzoo.graphs import generate as gen
    from hyperzoo.graphs.store import GraphStore, GraphStoreWriter
    from hyperzoo.nets.spaces import get_space

    sp = get_space(space)
    if num < 1 or part_size < 1:
        raise ConfigError(f"num and part_size must be positive, got {num} and {part_size}")
    held = holdout_hashes(space) if holdout else {}
    out = Path(out)
    parts_dir = out.with_name(out.name + ".parts")
    meta = {"space": space, "seed": seed, "s_max": s_max, "holdout": ",".join(sorted(held)) or "none"}
    if out.exists() and not parts_dir.exists():
        store = GraphStore(out)
        if len(store) >= num and all(store.attrs.get(k) == v for k, v in meta.items()):
            return out
        raise DataError(f"{out} exists (different settings or fewer graphs); delete it or choose another --out")
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts, done, cursor, seen = gen._read_parts(parts_dir, meta)
    bad = set(held.values())
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num, initial=done, desc=f"{sp.name} graphs", unit="graph", dynamic_ncols=True)
    t0, made, rejected = time.perf_counter(), 0, 0
    buffer: list[tuple[int, dict[str, Any], ArchGraph]] = []
    blocks = (
        gen._blocks(space, seed, cursor, s_max, None, workers, make=_make_block, block=4) if done < num else iter(())
    )
    try:
        for block in blocks:
            for j, args, graph in block:
                if args["hash"] in bad:
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
                    path = parts_dir / f"part-{len(parts):06d}.h5"
                    attrs = {**meta, "next_candidate": buffer[-1][0] + 1, "first_graph": done}
                    with GraphStoreWriter(path, compression=None, attrs=attrs) as w:
                        for i, (jj, a, g) in enumerate(buffer):
                            g.name = f"{space}/{done + i}"
                            w.append(g, {**a, "candidate": jj})
                    parts.append(path)
                    done += len(buffer)
                    buffer = []
                if done == num:
                    break
            if done == num:
                break
    finally:
        if hasattr(blocks, "close"):
            blocks.close()
        if bar is not None:
            bar.close()
    rate = made / max(time.perf_counter() - t0, 1e-9)
    extra = {"graphs_per_s_last_run": round(rate, 3), "num_graphs_req": num, "holdout_rejected_last_run": rejected}
    gen._merge(parts, out, meta, compression, extra, limit=num)
    import shutil

    shutil.rmtree(parts_dir)
    return out
