"""A CSV logger that survives resuming.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when a run starts in a non-empty log folder, so
a run resumed after a kill (``--ckpt_path last``) would lose every row logged before the kill.
:class:`ResumableCSVLogger` appends to the file instead, keeping its header. When a run resumes,
:class:`~hyperzoo.lightning.resume.ResumableCheckpoint` drops the rows the killed run logged after its last
checkpoint (:meth:`ResumableCSVLogger.drop_rows_after`), which the resumed run logs again: no step appears twice.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

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

    def drop_rows_after(self, step: int) -> int:
        """Removes rows whose ``step`` is above ``step`` from ``metrics.csv`` (atomically); returns how many."""
        path = Path(self.experiment.metrics_file_path)
        if not path.is_file():
            return 0
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows or "step" not in rows[0]:
            return 0
        col = rows[0].index("step")

        def keep(row: list[str]) -> bool:
            value = row[col] if col < len(row) else ""
            try:
                return not value or float(value) <= step
            except ValueError:
                return True

        kept = [rows[0], *(r for r in rows[1:] if keep(r))]
        dropped = len(rows) - len(kept)
        if dropped:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with tmp.open("w", newline="") as f:
                csv.writer(f).writerows(kept)
            os.replace(tmp, path)
        return dropped
