"""Merging pipelines: plain averaging, Git Re-Basin (weight matching + BN reset), PLeaS, and the ensemble.

One entry point, :func:`merge_models`, runs every method the same way so that the comparisons are fair:

* ``average``: ``(W_A + W_B) / 2`` with no permutation (then BN reset);
* ``rebasin``: Git Re-Basin weight matching (Ainsworth et al. 2023), permuted average, BN statistics reset
  (Jordan et al., "REPAIR", ICLR 2023, showed that the reset is what makes BN networks merge);
* ``pleas``: activation matching, partial merge to ``width``, closed-form least squares, BN reset;
* ``pleas_weight``: the same with weight matching.

BN reset: running statistics are re-estimated as exact averages (``momentum=None``) over ``bn_batches``
training batches in train mode, parameters untouched.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn

from hyperzoo.errors import ConfigError
from hyperzoo.merge.matching import activation_matching, weight_matching
from hyperzoo.merge.permute import Indices
from hyperzoo.merge.pleas import MergePlan, build_merged, partial_plan, refit_least_squares
from hyperzoo.merge.spec import PermutationSpec, derive_spec
from hyperzoo.nets.compute import count_macs, count_params

__all__ = ["METHODS", "Ensemble", "MergeResult", "merge_models", "reset_bn_stats"]

METHODS = ("average", "rebasin", "pleas", "pleas_weight")


def reset_bn_stats(model: nn.Module, batches: Iterable[Any], num_batches: int = 50) -> int:
    """Re-estimates every BatchNorm's running statistics on ``num_batches`` batches; returns batches used.

    :func:`torch.optim.swa_utils.update_bn` on the first ``num_batches`` batches, moved to the model's device (reset,
    ``momentum=None`` for an exact average, train mode, then momenta and mode restored). Equivalent to the loop it
    replaced except when a forward raises: then the momenta stay ``None`` and the model in train mode (``update_bn``
    restores nothing on errors); the merge fails anyway.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return 0
    used = 0

    def first_batches() -> Iterator[Any]:
        nonlocal used
        for batch in itertools.islice(batches, num_batches):
            yield batch
            used += 1

    update_bn(first_batches(), model, device=next(model.parameters()).device)
    return used


class Ensemble(nn.Module):
    """Both models side by side: averaged logits (same labels) or concatenated logits (different labels)."""

    def __init__(self, model_a: nn.Module, model_b: nn.Module, concat: bool = False) -> None:
        super().__init__()
        self.a, self.b, self.concat = model_a, model_b, concat

    def forward(self, x: Tensor) -> Tensor:
        ya, yb = self.a(x), self.b(x)
        return torch.cat([ya, yb], -1) if self.concat else 0.5 * (ya + yb)


@dataclass
class MergeResult:
    """A merged model and how it was made."""

    model: nn.Module
    spec: PermutationSpec
    plan: MergePlan
    perms: Indices
    info: dict[str, Any] = field(default_factory=dict)


def merge_models(
    model_a: nn.Module,
    model_b: nn.Module,
    method: str = "pleas",
    width: float = 1.0,
    batches: Iterable[Any] | None = None,
    label_spaces: str = "same",
    match_batches: int = 20,
    ls_batches: int = 20,
    bn_batches: int = 20,
    ridge: float = 1e-3,
    spec: PermutationSpec | None = None,
    strict: bool = True,
    seed: int = 0,
    least_squares: bool = True,
    matching: tuple[Indices, dict[int, Tensor]] | None = None,
) -> MergeResult:
    """Merges two models of one architecture with ``method`` (see the module docstring).

    Args:
        model_a: first model.
        model_b: second model (same architecture and widths).
        method: ``average``, ``rebasin``, ``pleas`` or ``pleas_weight``.
        width: merged width factor in ``[1, 2]`` per group (PLeaS only; the baselines are width 1).
        batches: re-iterable training batches for matching, least squares and BN reset (a DataLoader); only
            ``average``/``rebasin`` without BN layers can run without.
        label_spaces: ``"same"`` or ``"different"`` (both heads kept side by side).
        match_batches: batches per activation-matching pass.
        ls_batches: batches for the least-squares statistics.
        bn_batches: batches for the BN reset.
        ridge: relative ridge strength of the least-squares solve.
        spec: a precomputed spec of the architecture (else derived from ``model_a``).
        strict: passed to :func:`derive_spec`.
        seed: weight-matching order and row sampling.
        least_squares: run PLeaS's least-squares refit (False: the permuted partial merge alone, an ablation).
        matching: precomputed ``(perms, similarity)`` of this pair for the method's matching (reused across
            widths: matching does not depend on the width).

    Raises:
        ConfigError: an unknown method, a width outside [1, 2], different architectures, or missing batches.
    """
    has_bn = _check_merge_args(method, width, batches, model_a)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    spec = spec or derive_spec(model_a, strict=strict)
    spec.check_compatible(model_b.state_dict())
    times["spec_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    perms, similarity = _match_models(method, model_a, model_b, spec, batches, match_batches, seed, matching)
    times["match_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = partial_plan(spec, perms, similarity, width, label_spaces, template=model_a)
    merged = build_merged(model_a, model_b, spec, plan)
    rows: dict[str, int] = {}
    if method.startswith("pleas") and least_squares:
        assert batches is not None
        rows = refit_least_squares(merged, model_a, model_b, spec, plan, batches, ls_batches, ridge, seed=seed)
    times["merge_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if has_bn and batches is not None and bn_batches > 0:
        reset_bn_stats(merged, batches, bn_batches)
    times["bn_reset_s"] = time.perf_counter() - t0
    info: dict[str, Any] = {
        "method": method,
        "width": width,
        "least_squares": bool(least_squares and method.startswith("pleas")),
        "label_spaces": label_spaces,
        **_cost_info(model_a, merged, spec),
        "merged_fraction": plan.merged_fraction(spec),
        "groups": len(spec.groups),
        "matching_cached": matching is not None,
        "ls_rows_min": min(rows.values()) if rows else 0,
        **times,
    }
    info["macs_ratio"] = int(info["macs"]) / max(1, info["macs_single"])
    return MergeResult(merged, spec, plan, perms, info)


def _check_merge_args(method: str, width: float, batches: Iterable[Any] | None, model_a: nn.Module) -> bool:
    """Raises ConfigError for an unknown method, a width it cannot merge at, or missing batches it needs.

    Returns:
        Whether ``model_a`` has BatchNorm layers (then the merge resets their statistics).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown merge method {method!r}; choose one of {', '.join(METHODS)}")
    if not 1.0 <= width <= 2.0:
        raise ConfigError(f"merge width must be in [1, 2] (1 = fully merged, 2 = side by side), got {width}")
    if method in ("average", "rebasin") and width != 1.0:
        raise ConfigError(f"method {method!r} merges at width 1 only; use method='pleas' for width {width}")
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model_a.modules())
    if batches is None and (method.startswith("pleas") or has_bn):
        raise ConfigError(f"method {method!r} needs training batches (matching, least squares or BN reset)")
    return has_bn


def _match_models(
    method: str,
    model_a: nn.Module,
    model_b: nn.Module,
    spec: PermutationSpec,
    batches: Iterable[Any] | None,
    match_batches: int,
    seed: int,
    matching: tuple[Indices, dict[int, Tensor]] | None,
) -> tuple[Indices, dict[int, Tensor] | None]:
    """The permutations of B onto A (and the matched units' similarities) that ``method`` merges with.

    ``average`` uses identities (no similarity), ``rebasin``/``pleas_weight`` weight matching, ``pleas``
    activation matching; a precomputed ``matching`` is reused for every method but ``average``.
    """
    if matching is not None and method != "average":
        return matching
    if method == "average":
        return {g: torch.arange(spec.leaves[g].size) for g in spec.groups}, None
    if method in ("rebasin", "pleas_weight"):
        return weight_matching(spec, model_a.state_dict(), model_b.state_dict(), seed=seed)
    assert batches is not None
    return activation_matching(model_a, model_b, spec, batches, match_batches)


def _cost_info(model_a: nn.Module, merged: nn.Module, spec: PermutationSpec) -> dict[str, Any]:
    """MACs and parameter counts of the merged model and of one source model."""
    x = torch.zeros(spec.input_shape[1:], device=next(model_a.parameters()).device)[None]
    single = count_macs(model_a, x)
    return {
        "macs": count_macs(merged, x),
        "macs_single": single,
        "params": count_params(merged),
        "params_single": count_params(model_a),
    }
