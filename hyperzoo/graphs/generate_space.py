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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hyperzoo.errors import ConfigError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph

__all__ = ["draw_seed", "generate_space", "holdout_hashes", "holdout_store", "space_candidate"]


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


def _holdout_graphs(space: str, s_max: int) -> Iterator[tuple[str, Any, ArchGraph]]:
    """``(name, spec, graph)`` of each held-out network of a space, built structure-only (10 classes)."""
    import torch

    from hyperzoo.nets.deepnets1m import skip_init
    from hyperzoo.nets.spaces import get_space

    sp = get_space(space)
    for name, spec in sp.holdout.items():
        with torch.device("meta"), skip_init():
            net = sp.holdout_module(name)
        yield name, spec, _graph(net, sp.input_size, s_max)


def holdout_hashes(space: str) -> dict[str, str]:
    """``{held-out name: graph hash}`` of a space's held-out networks (10 classes, the space's input size)."""
    from hyperzoo.graphs.graph_hash import graph_hash

    return {name: graph_hash(graph) for name, _, graph in _holdout_graphs(space, 1)}


def holdout_store(space: str, out: str | Path, s_max: int = DEFAULT_S_MAX, compression: str | None = "lzf") -> Path:
    """Writes the graphs of a space's held-out networks (named ``name``) to a new store at ``out``.

    This is the validation set of a family-trained GHN: held-out accuracy logged during training is accuracy on
    networks the training store cannot contain (``data.val_graphs`` of ``GraphImageDataModule``). Each graph's
    ``net_args`` rebuild its network (:meth:`hyperzoo.nets.spaces.Space.rebuild`).

    Raises:
        ConfigError: the space holds nothing out.
    """
    from hyperzoo.graphs.graph_hash import graph_hash
    from hyperzoo.graphs.store import GraphStoreWriter
    from hyperzoo.nets.spaces import get_space

    held = list(get_space(space).holdout)
    if not held:
        raise ConfigError(f"space {space!r} holds out no networks; there is no held-out set to write")
    attrs = {"space": space, "s_max": s_max, "holdout_set": ",".join(held)}
    with GraphStoreWriter(out, compression=compression, attrs=attrs) as w:
        for name, spec, graph in _holdout_graphs(space, s_max):
            graph.name = name
            net_args = dict(spec) if isinstance(spec, dict) else {"holdout": name}
            net_args.update(space=space, hash=graph_hash(graph), num_nodes=int(graph.num_nodes))
            w.append(graph, net_args)
    return Path(out)


def _make_block(
    space: str, seed: int, start: int, stop: int, s_max: int, _unused: Any = None
) -> list[tuple[int, dict[str, Any], ArchGraph]]:
    from hyperzoo.graphs.generate import strip_for_store

    out = []
    for j in range(start, stop):
        try:
            args, graph = space_candidate(space, j, seed, s_max)
        except ConfigError:
            raise
        except Exception:  # an unbuildable draw is rejected, as in generate_split
            continue
        out.append((j, args, strip_for_store(graph)))
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
    from hyperzoo.graphs import generate as gen
    from hyperzoo.nets.spaces import get_space

    sp = get_space(space)
    held = holdout_hashes(space) if holdout else {}
    meta = {"space": space, "seed": seed, "s_max": s_max, "holdout": ",".join(sorted(held)) or "none"}
    return gen.run_generation(
        out,
        num,
        meta,
        lambda cursor: gen.candidate_blocks(space, seed, cursor, s_max, None, workers, make=_make_block, block=4),
        name_prefix=space,
        label=sp.name,
        compression=compression,
        progress=progress,
        part_size=part_size,
        reject=frozenset(held.values()),
    )
