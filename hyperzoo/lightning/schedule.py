"""Learning-rate multipliers per optimizer step."""

from __future__ import annotations

import math

from hyperzoo.errors import HyperzooError

__all__ = ["lr_factor"]


def lr_factor(
    step: int,
    total_steps: int,
    schedule: str,
    warmup_steps: int = 0,
    milestones: list[int] | None = None,
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> float:
    """Multiplier of the base learning rate at optimizer step ``step``.

    Args:
        step: the current optimizer step (0-based).
        total_steps: steps of the whole run.
        schedule: ``"cosine"`` (half cosine from 1 to ``min_factor``), ``"step"`` (times ``gamma`` at each
            milestone) or ``"constant"``.
        warmup_steps: linear warm-up from ``1 / warmup_steps`` to 1 over the first steps.
        milestones: steps at which the step schedule decays.
        gamma: the step schedule's decay factor.
        min_factor: the cosine schedule's final multiplier.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "step":
        return gamma ** sum(step >= m for m in (milestones or []))
    if schedule == "constant":
        return 1.0
    raise HyperzooError(f"unknown lr schedule {schedule!r}; use 'cosine', 'step' or 'constant'")
