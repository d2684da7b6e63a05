"""Typed results of ranking architectures with SMASH (:func:`hyperzoo.smash.rank.run_ranking`).

Frozen dataclasses with ``to_json()``, which gives the keys ``hyperzoo smash rank --out`` always wrote. This module
imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RankCorrelation", "RankedArch", "RankingResult"]


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho and Kendall's tau of two lists, with percentile bootstrap intervals.

    Attributes:
        n: pairs; ``spearman``/``kendall``: the estimates; ``*_p``: their p-values; ``*_ci``: ``(low, high)`` over
        ``n_boot`` resamples at level ``ci`` (NaN when every resample was tied).
    """

    n: int
    spearman: float
    spearman_p: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_p: float
    kendall_ci: tuple[float, float]
    n_boot: int
    ci: float

    def to_json(self) -> dict[str, Any]:
        """The JSON keys, intervals as lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class RankedArch:
    """One scored architecture: its SMASH error and, when it was trained, its trained error and size."""

    index: int
    smash_error: float
    arch: Mapping[str, Any]
    params: int | None = None
    trained_error: float | None = None

    @property
    def trained(self) -> bool:
        """Whether it was trained normally."""
        return self.trained_error is not None

    def to_json(self) -> dict[str, Any]:
        """The JSON record (``params``/``trained_error`` null when not trained)."""
        return {**dataclasses.asdict(self), "arch": dict(self.arch)}


@dataclass(frozen=True)
class RankingResult:
    """SMASH scores of random architectures against the errors of a trained subset."""

    num_archs: int
    num_train: int
    train_steps: int
    batch_size: int
    holdout_images: int
    train_images: int
    seed: int
    correlation: RankCorrelation
    score_seconds: float
    train_seconds: float
    records: tuple[RankedArch, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON that ``hyperzoo smash rank --out`` writes (without its ``checkpoint``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["correlation"] = self.correlation.to_json()
        out["records"] = [r.to_json() for r in self.records]
        return out
