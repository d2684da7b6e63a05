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
    cooldown_steps: int = 0,
    restart_steps: int = 0,
    restart_mult: int = 1,
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
        cooldown_steps: ``"constant_cooldown"``: constant 1, then a linear decay to ``min_factor`` over the last
            ``cooldown_steps`` of ``total_steps``. The rate before the cooldown does not depend on the total, so a
            resumed run may extend ``max_steps`` freely until its cooldown has begun.
        restart_steps: ``"warm_restarts"`` (SGDR, Loshchilov & Hutter 2017, as
            ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``): length of the first cosine cycle; the
            total length plays no part.
        restart_mult: each cycle is this many times longer than the previous one.
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
    if schedule == "constant_cooldown":
        start = total_steps - cooldown_steps
        if cooldown_steps <= 0 or step < start:
            return 1.0
        t = min(1.0, (step - start + 1) / cooldown_steps)
        return 1.0 - (1.0 - min_factor) * t
    if schedule == "warm_restarts":
        period = max(1, restart_steps)
        t = step - warmup_steps
        if restart_mult <= 1:
            t %= period
        else:
            while t >= period:
                t -= period
                period *= restart_mult
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t / period))
    raise HyperzooError(
        f"unknown lr schedule {schedule!r}; use 'cosine', 'step', 'constant', 'constant_cooldown' or 'warm_restarts'"
    )
