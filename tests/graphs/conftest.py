"""Shared checks for the graph tests."""

from collections.abc import Callable

import pytest
from torch import nn


def _accounted(model: nn.Module, graph) -> bool:
    """Every parameter tensor is in exactly one node (norm biases with their weight) or in graph.unmapped."""
    names = [n for n, has in zip(graph.param_names, graph.has_param.tolist()) if has]
    norm = {n for n, op in zip(graph.param_names, graph.op_names) if op in ("bn", "ln")}
    params = {n for n, _ in model.named_parameters()}
    covered = {n for n in params if n in names or (n.endswith(".bias") and n[: -len("bias")] + "weight" in norm)}
    return (
        len(names) == len(set(names))  # no parameter in two nodes
        and set(names) <= params
        and covered | set(graph.unmapped) == params
        and not covered & set(graph.unmapped)
    )


@pytest.fixture
def accounted() -> Callable[[nn.Module, object], bool]:
    return _accounted
