"""A training DataLoader whose position within the epoch is saved in checkpoints, so a killed run resumes mid-epoch.

Lightning saves the ``state_dict`` of every training loader that has one (``_Stateful``) and hands it back through
``load_state_dict`` before it iterates again on resume. :class:`ResumableDataLoader` reports ``(epoch, batches
delivered)``; on load it tells its :class:`~hyperzoo.data.sampler.ShardedBatchSampler` to skip the batches the
interrupted run already trained on. The sampler's order depends only on its seed and the epoch, so the resumed run
sees exactly the batches the interrupted run would have seen next, without reading the skipped ones.

Lightning does not prefetch from loaders that have a length, so "batches delivered" at a checkpoint written in
``on_train_batch_end`` is the number of batches trained on in this epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from hyperzoo.data.sampler import ShardedBatchSampler

__all__ = ["ResumableDataLoader"]


class ResumableDataLoader(DataLoader):
    """``DataLoader(dataset, sampler=ShardedBatchSampler(...), batch_size=None, ...)`` that can resume mid-epoch.

    Takes the arguments of :class:`torch.utils.data.DataLoader`; ``sampler`` must be a
    :class:`~hyperzoo.data.sampler.ShardedBatchSampler` (or subclass) yielding whole batches.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, ShardedBatchSampler):
            raise TypeError(f"ResumableDataLoader needs a ShardedBatchSampler, got {type(self.sampler).__name__}")
        self._epoch = 0
        self._delivered = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: the epoch and the skip are read at the first batch, after Lightning's set_epoch.
        sampler = self.sampler
        assert isinstance(sampler, ShardedBatchSampler)
        resume = sampler._resume
        self._epoch = sampler.epoch
        self._delivered = resume[1] if resume is not None and resume[0] == sampler.epoch else 0
        for batch in super().__iter__():
            self._delivered += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": e, "batches": n}``: the current epoch and the batches delivered in it so far."""
        return {"epoch": int(self._epoch), "batches": int(self._delivered)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Makes the next pass start at the saved position (skipping the batches already trained on)."""
        sampler = self.sampler
        assert isinstance(sampler, ShardedBatchSampler)
        epoch, batches = int(state_dict.get("epoch", 0)), int(state_dict.get("batches", 0))
        sampler.resume_at(epoch, batches)
        self._epoch, self._delivered = epoch, batches
