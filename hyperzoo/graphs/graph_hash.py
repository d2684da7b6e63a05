"""A canonical hash of an architecture graph: equal for equal architectures, blind to parameter values.

``graph_hash(graph)`` hashes the node ops, the node shapes and the real edges (distance 1; virtual edges follow
from them) in a canonical topological order, so two graphs of the same architecture hash alike whatever order
their nodes were numbered in and whatever ``s_max`` they were built with; names and parameter values play no part.
"""

from __future__ import annotations

import hashlib
import heapq
from typing import Any

__all__ = ["graph_hash"]


def graph_hash(graph: Any) -> str:
    """The canonical hash (40 hex digits) of an :class:`~hyperzoo.graphs.ArchGraph`.

    The canonical order is Kahn's topological sort that, among the ready nodes, takes the one with the smallest
    key ``(op, shape, sorted canonical positions of its predecessors)``; the hash covers every node's op and
    shape in that order and the real edges renumbered by it.

    Args:
        graph: a graph with ``op`` ``[N]``, ``shape`` ``[N, 4]``, ``edge_index`` ``[2, E]`` and (optionally)
            ``edge_dist`` ``[E]`` (edges with a distance other than 1 are ignored).

    Returns:
        A SHA-1 hex digest.
    """
    ops = [int(v) for v in graph.op.tolist()]
    shapes = [tuple(int(x) for x in s) for s in graph.shape.tolist()]
    n = len(ops)
    edge_index = graph.edge_index
    dist = getattr(graph, "edge_dist", None)
    src, dst = edge_index[0].tolist(), edge_index[1].tolist()
    keep = [True] * len(src) if dist is None else [int(d) == 1 for d in dist.tolist()]
    succ: list[list[int]] = [[] for _ in range(n)]
    preds: list[list[int]] = [[] for _ in range(n)]
    for s, d, k in zip(src, dst, keep):
        if k:
            succ[int(s)].append(int(d))
            preds[int(d)].append(int(s))
    indeg = [len(p) for p in preds]
    pos: dict[int, int] = {}
    heap: list[tuple[Any, int]] = []

    def key(v: int) -> tuple[Any, ...]:
        return (ops[v], shapes[v], tuple(sorted(pos[u] for u in preds[v])))

    for v in range(n):
        if indeg[v] == 0:
            heapq.heappush(heap, (key(v), v))
    while heap:
        _, v = heapq.heappop(heap)
        pos[v] = len(pos)
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(heap, (key(w), w))
    if len(pos) != n:
        raise ValueError(f"graph {getattr(graph, 'name', '')!r} has a cycle in its real edges; it is not a DAG")
    order = sorted(range(n), key=pos.__getitem__)
    h = hashlib.sha1()
    h.update(repr([(ops[v], shapes[v]) for v in order]).encode())
    edges = sorted((pos[s], pos[d]) for s, d, k in zip(src, dst, keep) if k)
    h.update(repr(edges).encode())
    return h.hexdigest()
