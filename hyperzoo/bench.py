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


def median_seconds(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
