"""Epoch schedules built from torch schedulers give, step for step, the learning rates of hyperzoo's former
hand-written ``lr_factor`` (kept here, verbatim in its arithmetic, as the reference)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from hyperzoo.errors import ConfigError
from hyperzoo.lightning.schedule import (
    ConstantCooldownLR,
    MultiStepEpochsLR,
    WarmRestartsLR,
    WarmupConstantLR,
    WarmupCosineLR,
)


def former_lr_factor(step: int, total: int, kind: str, warmup: int = 0, milestones: list[int] | None = None,
                     gamma: float = 0.1, cooldown: int = 0, restart: int = 0, mult: int = 1) -> float:  # fmt: skip
    """The multiplier the former ``hyperzoo.lightning.schedule.lr_factor`` gave at ``step`` (min_factor 0)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "cosine":
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * t))
    if kind == "step":
        return gamma ** sum(step >= m for m in (milestones or []))
    if kind == "constant":
        return 1.0
    if kind == "constant_cooldown":
        start = total - cooldown
        if cooldown <= 0 or step < start:
            return 1.0
        return 1.0 - min(1.0, (step - start + 1) / cooldown)
    assert kind == "warm_restarts"
    period, t = max(1, restart), step - warmup
    if mult <= 1:
        t %= period
    else:
        while t >= period:
            t -= period
            period *= mult
    return 0.5 * (1 + math.cos(math.pi * t / period))


def _lrs(make, steps: int, base: tuple[float, ...] = (1.0, 0.3)) -> list[list[float]]:
    """Learning rates of every group at steps 0..steps-1, stepped as Lightning does (after the optimizer)."""
    params = [torch.zeros(1, requires_grad=True) for _ in base]
    opt = torch.optim.SGD([{"params": [p], "lr": b} for p, b in zip(params, base)], lr=1.0)
    sched = make(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": no gradients here
        for _ in range(steps):
            out.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
    return out


PER_EPOCH = 7.5  # a fractional number of steps per epoch, as with a short last batch
CASES = [  # (name, new schedule factory(opt, total), former lr_factor arguments(total))
    (
        "step",
        lambda o, t: MultiStepEpochsLR(o, [2, 3.4], 0.1, 0, PER_EPOCH, t),
        lambda t: {"kind": "step", "milestones": [15, 26]},
    ),
    (
        "step+warmup",
        lambda o, t: MultiStepEpochsLR(o, [0.2, 2, 3], 0.5, 1.0, PER_EPOCH, t),
        lambda t: {"kind": "step", "milestones": [2, 15, 22], "gamma": 0.5, "warmup": 8},
    ),
    ("cosine", lambda o, t: WarmupCosineLR(o, 0, PER_EPOCH, t), lambda t: {"kind": "cosine"}),
    ("cosine+warmup", lambda o, t: WarmupCosineLR(o, 0.7, PER_EPOCH, t), lambda t: {"kind": "cosine", "warmup": 5}),
    (
        "cosine+1-step warmup",
        lambda o, t: WarmupCosineLR(o, 0.1, PER_EPOCH, t),
        lambda t: {"kind": "cosine", "warmup": 1},
    ),
    ("constant", lambda o, t: WarmupConstantLR(o, 0, PER_EPOCH, t), lambda t: {"kind": "constant"}),
    (
        "constant+warmup",
        lambda o, t: WarmupConstantLR(o, 2, PER_EPOCH, t),
        lambda t: {"kind": "constant", "warmup": 15},
    ),
    (
        "constant_cooldown",
        lambda o, t: ConstantCooldownLR(o, 1.0, 0, PER_EPOCH, t),
        lambda t: {"kind": "constant_cooldown", "cooldown": 8},
    ),
    (
        "constant_cooldown+warmup",
        lambda o, t: ConstantCooldownLR(o, 2.0, 0.5, PER_EPOCH, t),
        lambda t: {"kind": "constant_cooldown", "cooldown": 15, "warmup": 4},
    ),
    (
        "cooldown into warmup",
        lambda o, t: ConstantCooldownLR(o, 5.0, 2.0, PER_EPOCH, t),
        lambda t: {"kind": "constant_cooldown", "cooldown": 38, "warmup": 15},
    ),
    (
        "1-step cooldown",
        lambda o, t: ConstantCooldownLR(o, 0.1, 0, PER_EPOCH, t),
        lambda t: {"kind": "constant_cooldown", "cooldown": 1},
    ),
    (
        "warm_restarts",
        lambda o, t: WarmRestartsLR(o, 0.5, 1, 0, PER_EPOCH, t),
        lambda t: {"kind": "warm_restarts", "restart": 4},
    ),
    (
        "warm_restarts x2+warmup",
        lambda o, t: WarmRestartsLR(o, 0.4, 2, 0.3, PER_EPOCH, t),
        lambda t: {"kind": "warm_restarts", "restart": 3, "mult": 2, "warmup": 2},
    ),
]


@pytest.mark.parametrize("total", [40, 61])
@pytest.mark.parametrize(("name", "make", "former"), CASES, ids=[c[0] for c in CASES])
def test_learning_rate_per_step_equals_the_former_schedule(name, make, former, total):
    got = _lrs(lambda opt: make(opt, total), total + 1)
    for step, lrs in enumerate(got):
        expect = former_lr_factor(step, total, **former(total))
        assert lrs == pytest.approx([expect, 0.3 * expect], rel=1e-9, abs=1e-12), (name, step)


def test_cosine_of_a_ghn3_length_run_stays_on_the_closed_form():
    """A long run (chained torch updates, not a closed form per step) keeps the former values to 1e-9."""
    total, per_epoch = 20_000, 781.0
    got = _lrs(lambda opt: WarmupCosineLR(opt, 5, per_epoch, total), total, base=(1.0,))
    worst = max(abs(lr[0] - former_lr_factor(s, total, "cosine", warmup=3905)) for s, lr in enumerate(got))
    assert worst < 1e-9


def test_constant_cooldown_resumed_with_a_longer_run_moves_its_cooldown():
    """Extending max_steps on resume (before the cooldown began) gives the schedule of the longer run."""

    def fresh(total: int):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        return opt, ConstantCooldownLR(opt, cooldown_epochs=2, steps_per_epoch=5, total_steps=total)

    opt, sched = fresh(30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(12):
            opt.step()
            sched.step()
    state, opt_state = sched.state_dict(), opt.state_dict()
    opt, sched = fresh(60)  # the resumed run, with a larger total
    opt.load_state_dict(opt_state)
    sched.load_state_dict(state)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(12, 60):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    expect = [former_lr_factor(s, 60, "constant_cooldown", cooldown=10) for s in range(12, 60)]
    assert lrs == pytest.approx(expect, abs=1e-12)


def test_state_dict_loads_with_weights_only(tmp_path):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = MultiStepEpochsLR(opt, [1, 2], warmup_epochs=0.5, steps_per_epoch=4, total_steps=20)
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    sched.load_state_dict(state)


def test_epoch_schedules_need_a_stepping_and_valid_settings():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ConfigError, match="needs the run's stepping"):
        WarmupCosineLR(opt, warmup_epochs=1)
    with pytest.raises(ConfigError, match="warmup_epochs must be a finite number >= 0, got -1"):
        WarmupCosineLR(opt, warmup_epochs=-1, steps_per_epoch=10, total_steps=100)
    with pytest.raises(ConfigError, match="restart_mult an integer >= 1"):
        WarmRestartsLR(opt, restart_epochs=1, restart_mult=0, steps_per_epoch=10, total_steps=100)
    with pytest.raises(ConfigError, match=r"milestones\[1\] must be a finite number >= 0"):
        MultiStepEpochsLR(opt, [1, -2], steps_per_epoch=10, total_steps=100)


def test_a_warmup_as_long_as_the_run_is_flagged():
    """0.2 epochs of warm-up at 782 steps per epoch (156 steps) in a 100-step run never reaches the base rate."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.warns(UserWarning, match=r"warm-up \(0.2 epochs = 156 steps .*\) is not shorter than the run"):
        WarmupCosineLR(opt, warmup_epochs=0.2, steps_per_epoch=782, total_steps=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WarmupCosineLR(opt, warmup_epochs=0.02, steps_per_epoch=782, total_steps=100)  # 16 steps: no warning
