"""Small helpers for the benchmarks under ``experiments/``: the machine's name and median timings."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["cpu_name", "median_seconds"]


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (or what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def median_seconds(
    fn: Callable[[], Any], repeats: int = 5, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls.

    ``clock=time.process_time`` measures CPU time instead of wall time: on a loaded machine that is what a dedicated
    core would take (for single-threaded work).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)
