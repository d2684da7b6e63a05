"""No parameter is left at its initialisation unless the caller asked for it.

:meth:`GHN.predict_batch <hyperzoo.ghn.GHN.predict_batch>` (and through it ``ghn(model)``,
``predict_parameters``, ``hyperzoo predict`` and ``eval-ghn``) checks two things:

- before prediction, that every graph maps every parameter (``graph.unmapped`` is empty; graphs built with
  ``strict=False`` or from ONNX files can list some);
- after prediction, that every parameter of every network got a tensor (a parameter whose op the GHN cannot embed,
  e.g. an extension op for a GHN with the reference's 15-op vocabulary, gets none).

Either failure raises :class:`UnpredictedParametersError` naming the parameters, unless the caller passed
``allow_unpredicted=True`` (``--skip-unknown`` on the command line); then a :class:`UnpredictedParametersWarning`
gives their count and names, and they keep their current values.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from hyperzoo.errors import HyperzooError

__all__ = [
    "UnpredictedParametersError",
    "UnpredictedParametersWarning",
    "check_unmapped",
    "expected_parameters",
    "report_unpredicted",
]


class UnpredictedParametersError(HyperzooError):
    """A GHN would leave parameters of a network at their current values and the caller did not allow it."""


class UnpredictedParametersWarning(UserWarning):
    """A GHN left parameters at their current values (the caller allowed it with ``allow_unpredicted=True``)."""


def _shown(names: Sequence[str], k: int = 8) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def check_unmapped(graphs: Sequence[Any], allow: bool) -> None:
    """Raise :class:`UnpredictedParametersError` if a graph lists unmapped parameters and ``allow`` is false."""
    if allow:
        return
    for g in graphs:
        unmapped = list(getattr(g, "unmapped", None) or [])
        if unmapped:
            if getattr(g, "graph_rules", None) == "ghn3":  # no param_ops to offer: these rules are the reference's
                raise UnpredictedParametersError(
                    f"graph {getattr(g, 'name', '')!r} has {len(unmapped)} parameter(s) without a node: "
                    f"{_shown(unmapped)}; the reference GHN-3 predicts no tensor for these and leaves them at their "
                    "initialisation: pass allow_unpredicted=True to do the same"
                )
            raise UnpredictedParametersError(
                f"graph {getattr(g, 'name', '')!r} has {len(unmapped)} parameter(s) without a node, which the GHN "
                f"cannot predict: {_shown(unmapped)}; map them when building the graph (graph_from_module(..., "
                "param_ops={'name or pattern': op})) or pass allow_unpredicted=True to leave them "
                "at their current values"
            )


def expected_parameters(graph: Any, params: Mapping[str, Any]) -> set[str]:
    """The parameters a GHN is to predict for ``graph``: its nodes' (a norm node's bias too) and the unmapped ones.

    Parameters in none of these are not part of the computation (``graph.unused``: modules the forward never
    calls) and are not checked.
    """
    from hyperzoo.graphs.vocabulary import OP_ID

    has = graph.has_param.tolist()
    ops = graph.op.tolist()
    norm = (OP_ID["bn"], OP_ID["ln"])
    out: set[str] = set(getattr(graph, "unmapped", None) or [])
    for v, name in enumerate(graph.param_names):
        if not (name and has[v]):
            continue
        out.add(name)
        module, _, leaf = name.rpartition(".")
        bias = f"{module}.bias" if module else "bias"
        if ops[v] in norm and leaf == "weight" and bias in params:
            out.add(bias)
    return out & set(params)


def report_unpredicted(
    models: Sequence[nn.Module], preds: Sequence[Mapping[str, Any]], allow: bool, graphs: Sequence[Any]
) -> list[list[str]]:
    """The parameters of each network that got no prediction; raise or warn about them.

    Args:
        models: the networks.
        preds: their predictions (``{parameter name: tensor}``).
        allow: warn (count and names) instead of raising :class:`UnpredictedParametersError`.
        graphs: their graphs (:func:`expected_parameters` says what each must have predicted).

    Returns:
        Per network, the sorted names of its unpredicted parameters.
    """
    missing = []
    for m, p, g in zip(models, preds, graphs):
        params = dict(m.named_parameters())
        missing.append(sorted(expected_parameters(g, params) - set(p)))
    for i, miss in enumerate(missing):
        if not miss:
            continue
        label = getattr(graphs[i], "name", "") or type(models[i]).__name__
        if not allow:
            raise UnpredictedParametersError(
                f"{label}: the GHN cannot predict {len(miss)} parameter tensor(s): {_shown(miss)} (ops the GHN "
                "has no embedding for, or parameters without a graph node); pass allow_unpredicted=True "
                "to leave them at their current values"
            )
        warnings.warn(
            f"{label}: {len(miss)} parameter tensor(s) left unpredicted at their current values: {_shown(miss)}",
            UnpredictedParametersWarning,
            stacklevel=3,
        )
    return missing
