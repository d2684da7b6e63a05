"""Graph rules: which computation graph a GHN sees for a network, chosen by the GHN's checkpoint, not by the user.

Three dialects exist, one per family of checkpoints:

- ``"ghn2"``: the reference GHN-2's graphs (ppuda ``Graph``), what ppuda's checkpoints and hyperzoo's GHNs with the
  reference's 15-op vocabulary were trained on (:func:`~hyperzoo.graphs.from_module.graph_from_module`,
  ``rules="ghn2"``);
- ``"hyperzoo"``: the same walk with hyperzoo's extensions (``cse`` nodes for gated products, ``msa`` nodes for
  attention kernels), for GHNs that embed the extended vocabulary (``graph_from_module(rules="hyperzoo")``);
- ``"ghn3"``: the reference GHN-3's graphs (SamsungSAILMontreal/ghn3 ``Graph``), for its checkpoints
  (:func:`~hyperzoo.graphs.ghn3_rules.ghn3_graph_from_module`).

A graph remembers the rules it was built with (``graph.graph_rules``; ``None`` for graphs read from a store or an
ONNX file, which follow the GHN-2 node rules). GHN-3 graphs differ from the other two in node shapes and names, so a
GHN-3 graph given to another GHN, or the reverse, is an error (:func:`check_compatible`); ``"ghn2"`` and
``"hyperzoo"`` graphs share the vocabulary and differ only in a few parameter-free nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.graphs.vocabulary import NUM_REFERENCE_PRIMITIVES

if TYPE_CHECKING:
    from torch import nn

    from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = ["GRAPH_RULES", "build_graph", "check_compatible", "default_rules"]

GRAPH_RULES = ("ghn2", "hyperzoo", "ghn3")


def default_rules(num_ops: int) -> str:
    """The rules of a GHN that does not say: ``"ghn2"`` for the reference vocabulary, ``"hyperzoo"`` beyond it."""
    return "ghn2" if num_ops <= NUM_REFERENCE_PRIMITIVES else "hyperzoo"


def check_rules(rules: str) -> str:
    """``rules`` if it is one of :data:`GRAPH_RULES`, else a :class:`ConfigError` listing them."""
    if rules not in GRAPH_RULES:
        raise ConfigError(f"unknown graph rules {rules!r}: use one of {', '.join(GRAPH_RULES)}")
    return rules


def build_graph(
    model: nn.Module,
    rules: str,
    input_size: int | tuple[int, ...] | None = None,
    s_max: int = 50,
    name: str | None = None,
    **kwargs: Any,
) -> ArchGraph:
    """The graph of ``model`` under ``rules``; ``kwargs`` go to the builder (``graph_from_module`` for GHN-2 rules)."""
    check_rules(rules)
    if rules == "ghn3":
        from hyperzoo.graphs.ghn3_rules import ghn3_graph_from_module

        return ghn3_graph_from_module(model, s_max=s_max, name=name, input_size=input_size, **kwargs)
    from hyperzoo.graphs.from_module import graph_from_module

    graph = graph_from_module(model, input_size=input_size, s_max=s_max, name=name, rules=rules, **kwargs)
    graph.graph_rules = rules
    return graph


def check_compatible(graph: ArchGraph, rules: str) -> None:
    """Raise when ``graph`` was built for another GHN family than a GHN with ``rules`` (GHN-3 vs the others)."""
    built = getattr(graph, "graph_rules", None)
    if (built == "ghn3") != (rules == "ghn3"):
        raise HyperzooError(
            f"graph {graph.name!r} was built with the {built or 'ghn2'!r} graph rules but this GHN uses {rules!r}; "
            "build it with ghn.graph(model), which applies the GHN's own rules"
        )
