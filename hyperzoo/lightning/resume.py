"""Resumable training: ``last.ckpt`` written atomically every N steps, at every epoch end and on Ctrl-C.

:class:`ResumableCheckpoint` is the one callback a ``hyperzoo fit`` config needs for resuming. It writes
``<dirpath>/last.ckpt`` through a temporary file and a rename (a kill while writing leaves the previous checkpoint
intact), every ``every_n_train_steps`` optimizer steps, after every mid-epoch validation and at every epoch end.
Besides Lightning's own state (weights, optimizer, schedulers, loop counters, the training loader's position from
:class:`~hyperzoo.data.resumable.ResumableDataLoader`, the data module's augmentation generator) the checkpoint
holds the global random states (torch, CUDA, ``random``, NumPy), restored when training restarts, so a resumed run
ends with the same weights as an uninterrupted one. On resume, rows that the killed run logged to ``metrics.csv``
after the checkpoint are dropped (the resumed run logs them again), so no row appears twice.

Ctrl-C (SIGINT) in a single-process run finishes the current step, writes ``last.ckpt`` and stops; a second Ctrl-C
stops at once (the last checkpoint written stays valid). ``fast_dev_run`` runs write nothing.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from hyperzoo.errors import ConfigError, HyperzooError

__all__ = ["LAST", "ResumableCheckpoint", "TrainingInterrupted", "find_resumable"]

LAST = "last.ckpt"


class TrainingInterrupted(HyperzooError):
    """Training stopped on Ctrl-C after writing a resumable ``last.ckpt``."""


def _rng_state() -> dict[str, Any]:
    """Global random states as tensors and plain lists (loadable with ``torch.load(weights_only=True)``)."""
    np_state: Any = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [str(np_state[0]), torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def find_resumable(dirpath: str | os.PathLike) -> Path | None:
    """``<dirpath>/last.ckpt`` if it exists (stale temporary files of a write that was killed are removed)."""
    folder = Path(dirpath)
    for tmp in folder.glob(f".{LAST}.*.tmp"):
        tmp.unlink(missing_ok=True)
    path = folder / LAST
    return path if path.is_file() else None


class ResumableCheckpoint(Checkpoint):
    """Writes ``<dirpath>/last.ckpt`` atomically every N steps, after validation, at every epoch end and on Ctrl-C.

    Args:
        dirpath: the folder of ``last.ckpt``; None means ``<trainer.default_root_dir>/checkpoints``.
        every_n_train_steps: also write it every this many optimizer steps (0: only at validation and epoch ends).
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int = 200) -> None:
        if every_n_train_steps < 0:
            raise ConfigError(
                f"ResumableCheckpoint every_n_train_steps must be >= 0, got {every_n_train_steps} "
                "(0 writes last.ckpt only after validation and at epoch ends)"
            )
        self.dirpath = dirpath
        self.every_n_train_steps = every_n_train_steps
        self.last_saved_step = -1
        self._rng_to_restore: dict[str, Any] | None = None
        self._log_step: int | None = None
        self._interrupted = False
        self._old_handler: Any = None

    @property
    def path(self) -> Path:
        """Where ``last.ckpt`` goes."""
        assert self.dirpath is not None, "call setup() first"
        return Path(self.dirpath) / LAST

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")

    # -- state carried in the checkpoint --

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(), "log_step": self._log_step, "dirpath": str(self.dirpath)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict.get("rng")
        log_step = state_dict.get("log_step")
        self._log_step = int(log_step) if log_step is not None else None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _load_loader_states(trainer)
        if self._rng_to_restore is not None:  # after sanity checks and loader set-up: the next draw is the step's
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
            if self._log_step is not None:
                _drop_rows_after(trainer, self._log_step)
        self.last_saved_step = trainer.global_step
        self._install_sigint(trainer)

    # -- when to write --

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the epoch-end checkpoint follows (after validation)
        step = trainer.global_step
        n = self.every_n_train_steps
        if self._interrupted or (n and step % n == 0 and step != self.last_saved_step):
            self.save(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # mid-epoch validation (val_check_interval); the epoch-end one is covered by on_train_epoch_end
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return
        self.save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)

    # After Ctrl-C the stop comes at the start of the next step or epoch: the interrupted step's metrics are logged
    # (Lightning logs them after on_train_batch_end), and the checkpoint written at its end is the resume point.

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._interrupted and self.last_saved_step == trainer.global_step:
            self._stop(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._interrupted and self.last_saved_step == trainer.global_step:
            self._stop(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_sigint()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_sigint()

    # -- writing --

    def save(self, trainer: pl.Trainer) -> None:
        """Writes ``last.ckpt`` through a temporary file and a rename (no-op for ``fast_dev_run``)."""
        if getattr(trainer, "fast_dev_run", False) or trainer.sanity_checking:
            return
        for logger in trainer.loggers:  # rows logged so far reach the disk before the checkpoint that covers them
            logger.save()
        epoch_loop = trainer.fit_loop.epoch_loop
        self._log_step = int(getattr(epoch_loop, "_batches_that_stepped", trainer.global_step))
        path = self.path
        tmp = path.with_name(f".{LAST}.{os.getpid()}.tmp")
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank takes part; rank zero writes
        if trainer.is_global_zero:
            os.replace(tmp, path)
        trainer.strategy.barrier("ResumableCheckpoint.save")
        self.last_saved_step = trainer.global_step

    # -- Ctrl-C --

    def _install_sigint(self, trainer: pl.Trainer) -> None:
        import threading

        if trainer.world_size != 1 or threading.current_thread() is not threading.main_thread():
            return  # under DDP Lightning's own handling applies; the last checkpoint written stays valid

        def handler(signum: int, frame: Any) -> None:
            if self._interrupted:  # second Ctrl-C: stop now
                self._restore_sigint()
                raise KeyboardInterrupt
            self._interrupted = True
            print("\nhyperzoo: stopping after this step to save last.ckpt (Ctrl-C again to stop now)", file=sys.stderr)

        self._old_handler = signal.signal(signal.SIGINT, handler)

    def _restore_sigint(self) -> None:
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
            self._old_handler = None

    def _stop(self, trainer: pl.Trainer) -> None:
        self._restore_sigint()
        raise TrainingInterrupted(
            f"interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}; saved {self.path}: "
            "run the same command again to resume"
        )


def _load_loader_states(trainer: pl.Trainer) -> None:
    """Hands the checkpoint's training-loader positions to the loaders, if Lightning has not done so.

    Lightning loads them when it sets up the training data after restoring, but a module whose
    ``configure_optimizers`` asks for ``trainer.estimated_stepping_batches`` (every per-step schedule) makes it set
    up the data before the restore, and the states are then never loaded. The loaders' iterators are lazy, so
    loading here, before the first batch, is in time.
    """
    fit_loop = trainer.fit_loop
    states = getattr(fit_loop, "_combined_loader_states_to_load", None)
    combined = getattr(fit_loop, "_combined_loader", None)
    if states and combined is not None:
        combined._load_state_dicts(states)
        fit_loop._combined_loader_states_to_load = []


def _drop_rows_after(trainer: pl.Trainer, step: int) -> None:
    """Drops rows logged after the checkpoint (step > ``step``) by the killed run from resumable CSV logs."""
    from hyperzoo.lightning.loggers import ResumableCSVLogger

    for logger in trainer.loggers:
        if isinstance(logger, ResumableCSVLogger) and trainer.is_global_zero:
            logger.drop_rows_after(step)
