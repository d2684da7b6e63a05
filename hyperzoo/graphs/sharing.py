"""Weight sharing in computation graphs: one node per use of a parameter, all uses tied to one tensor.

A module applied at several places (a convolution called twice, a cell unrolled over time steps, a positional
encoding reused by every block) or a tensor registered in two modules (a tied embedding and classifier) is one
parameter with several uses. The graph gets **one node per use**, each in its place on the data path, so the graph
stays a DAG (a single node for all uses would close a cycle through the layers between them). The nodes carry the
same parameter name; :func:`tied_uses` lists them.

Prediction rule (:class:`~hyperzoo.ghn.GHN`): the parameter is predicted **once, from its first use** (the node
with the lowest id, i.e. the earliest in topological order); the later uses take part in message passing like any
node but their decoder outputs are not used. The filled model is therefore consistent: every use reads the same
tensor, as in the original model.

ONNX files where one initializer feeds several nodes get the same treatment (:func:`~hyperzoo.graphs.graph_from_onnx`
walks the same trace).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = ["first_uses", "tied_use", "tied_uses"]


def tied_use(
    nodes: list[Any], seen: dict[Any, Any], uses: dict[Any, int], fn: Any, leaf: Any, own: list[int]
) -> int | None:
    """Add the node of one more use of an already traced parameter; return its index (``None``: nothing to add).

    Args:
        nodes: the trace's nodes (a new node is appended).
        seen: the trace's ``{autograd function: (node index or None, name)}``.
        uses: ``{(consumer, leaf): node index}`` of the extra uses, updated here.
        fn: the consumer of this use.
        leaf: the parameter's ``AccumulateGrad`` node.
        own: the nodes already created for ``fn`` (a consumer reading one parameter twice is one use).
    """
    first, _ = seen[leaf]
    if first is None or first in own or (fn, leaf) in uses:
        return None  # not a parameter node (an input, a norm bias), or a second read inside one function
    node = nodes[first]
    nodes.append(type(node)(node.name, op=node.op, param=node.param, is_param=True))
    uses[(fn, leaf)] = len(nodes) - 1
    return len(nodes) - 1


def tied_uses(graph: ArchGraph) -> dict[str, list[int]]:
    """``{parameter name: [node ids]}`` of the parameters with more than one node (shared weights), ids ascending."""
    ids: dict[str, list[int]] = defaultdict(list)
    has = graph.has_param.tolist()
    for v, name in enumerate(graph.param_names):
        if name and has[v]:
            ids[name].append(v)
    return {k: v for k, v in ids.items() if len(v) > 1}


def first_uses(param_names: list[str], has_param: list[bool]) -> list[bool]:
    """Per node: whether it predicts its parameter (the first node of each name; later uses are tied to it)."""
    done: set[str] = set()
    keep = []
    for name, has in zip(param_names, has_param):
        keep.append(bool(has) and name not in done)
        if has:
            done.add(name)
    return keep
