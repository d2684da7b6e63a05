"""A CSV logger that survives resuming.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when a run starts in a non-empty log folder, so
a run resumed after a kill (``--ckpt_path last``) would lose every row logged before the kill.
:class:`ResumableCSVLogger` appends to the file instead, keeping its header; steps logged after the last
checkpoint and before the kill appear twice (keep the last row per step when reading).
"""

from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

__all__ = ["ResumableCSVLogger"]


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # keep earlier rows and their columns: new rows are appended under the same header
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(next(csv.reader(f), []))


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` (same arguments) that appends to an existing ``metrics.csv`` instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment  # type: ignore[return-value]  # our writer subclasses Lightning's private one
