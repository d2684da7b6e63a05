"""A callback that records the wall time of every training step (rank 0) to ``<default_root_dir>/step_times.json``.

Used to compare training throughput of process layouts (one process with two threads vs DDP over gloo on two):
    PYTHONPATH=experiments hyperzoo fit ... --trainer.callbacks+=step_timer.StepTimer
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl


class StepTimer(pl.Callback):
    """Wall-clock seconds between consecutive ``on_train_batch_end`` calls, written when training ends."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.times.append(time.perf_counter())

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            steps = [b - a for a, b in zip(self.times, self.times[1:])]
            out = Path(trainer.default_root_dir) / "step_times.json"
            out.write_text(json.dumps({"world_size": trainer.world_size, "step_seconds": steps}) + "\n")
