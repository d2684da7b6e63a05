"""Shared checks for the graph tests."""

from collections.abc import Callable

import pytest
from torch import nn


def _accounted(model: nn.Module, graph) -> bool:
    """Every parameter tensor is in a node (norm biases with their weight) or in graph.unmapped, not both.

    A shared parameter has one node per use, all of the same op (``hyperzoo.graphs.sharing``).
    """
    names = [n for n, has in zip(graph.param_names, graph.has_param.tolist()) if has]
    norm = {n for n, op in zip(graph.param_names, graph.op_names) if op in ("bn", "ln")}
    params = {n for n, _ in model.named_parameters()}
    covered = {n for n in params if n in names or (n.endswith(".bias") and n[: -len("bias")] + "weight" in norm)}
    return (
        all(len({o for n_, o in zip(graph.param_names, graph.op_names) if n_ == n}) == 1 for n in set(names))
        and set(names) <= params
        and covered | set(graph.unmapped) | set(getattr(graph, "unused", [])) == params
        and not covered & set(graph.unmapped)
    )


@pytest.fixture
def accounted() -> Callable[[nn.Module, object], bool]:
    return _accounted
