"""A batch sampler that shards each epoch's permutation across distributed ranks.

It yields whole index batches, to be used with ``DataLoader(dataset, sampler=..., batch_size=None)`` and a
dataset that reads a batch per index list (:class:`~hyperzoo.data.h5_dataset.H5ImageDataset`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DistributedSampler

__all__ = ["ShardedBatchSampler"]


class ShardedBatchSampler(DistributedSampler):
    """Index batches from a per-epoch permutation, sharded by rank with the same number of batches per rank.

    Each epoch draws one permutation of ``indices`` from ``seed + epoch`` (identical on every rank), pads it
    by wrapping around to a multiple of the world size (as :class:`~torch.utils.data.DistributedSampler`
    does, so a few samples may repeat), and gives rank ``r`` every ``world_size``-th index from ``r``.
    Rank and world size are read from ``torch.distributed`` when it is initialised at iteration time, unless
    given.

    It subclasses :class:`~torch.utils.data.DistributedSampler` only so that Lightning's
    ``use_distributed_sampler`` recognises it as already distributed and leaves it in place (Lightning calls
    ``set_epoch`` on it every epoch); it does not use the parent's constructor.

    Args:
        indices: the dataset indices to draw from, or a count ``n`` for ``range(n)``.
        batch_size: indices per batch.
        shuffle: permute every epoch; otherwise keep the given order.
        seed: base seed of the permutation.
        drop_last: drop each rank's last incomplete batch.
        num_replicas: world size; None reads it from ``torch.distributed`` (1 when not initialised).
        rank: this process's rank; None reads it from ``torch.distributed`` (0 when not initialised).
    """

    def __init__(
        self,
        indices: Sequence[int] | Tensor | int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if isinstance(indices, int):
            indices = torch.arange(indices)
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, batches to skip) of a mid-epoch resume
        self._num_replicas = num_replicas
        self._rank = rank

    @property
    def num_replicas(self) -> int:  # type: ignore[override]
        if self._num_replicas is not None:
            return self._num_replicas
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def rank(self) -> int:  # type: ignore[override]
        if self._rank is not None:
            return self._rank
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    @property
    def num_samples(self) -> int:  # type: ignore[override]
        """Indices per rank and epoch (after padding)."""
        return math.ceil(len(self.indices) / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Selects the permutation of ``epoch`` (call before iterating each epoch)."""
        self.epoch = epoch

    def local_indices(self) -> Tensor:
        """This rank's indices for the current epoch, in order."""
        n, world = len(self.indices), self.num_replicas
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = self.indices[torch.randperm(n, generator=gen)]
        else:
            order = self.indices
        total = self.num_samples * world
        if total > n:
            order = order.repeat(math.ceil(total / max(n, 1)))[:total]
        return order[self.rank : total : world]

    def resume_at(self, epoch: int, batches: int) -> None:
        """Makes the next pass over ``epoch`` start after its first ``batches`` batches (a mid-epoch resume).

        The epoch's permutation depends only on ``seed`` and ``epoch``, so skipping its first batches continues the
        order of the interrupted run exactly. The skip applies once, and only if the sampler is then iterated at
        ``epoch``; ``epoch`` also becomes the current epoch.
        """
        if batches < 0:
            raise ValueError(f"batches must be >= 0, got {batches}")
        self.epoch = epoch
        self._resume = (epoch, batches) if batches else None

    def _epoch_batches(self) -> Iterator[Any]:
        """Every batch of the current epoch, in order (subclasses yield richer batches)."""
        local = self.local_indices()
        stop = len(local) - len(local) % self.batch_size if self.drop_last else len(local)
        for start in range(0, stop, self.batch_size):
            yield local[start : start + self.batch_size]

    def __iter__(self) -> Iterator[Any]:
        skip = 0
        if self._resume is not None:
            epoch, batches = self._resume
            self._resume = None
            if epoch == self.epoch:
                skip = batches
        yield from itertools.islice(self._epoch_batches(), skip, None)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)
