"""Fixed, in-memory CIFAR-10 batches for closed-form statistics and evaluation (merging, stitching).

Training batches come without augmentation in one fixed random order (the statistics of matching, least squares
and batch-norm resets); test batches are the test split, optionally a fixed random subset of it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["test_batches", "train_batches"]


def train_batches(root: str, batch_size: int = 128, num_batches: int = 20, seed: int = 0) -> list[Tensor]:
    """``num_batches`` normalized CIFAR-10 training batches (no augmentation, a fixed random order), in memory.

    Args:
        root: the data (``"sample"``, a folder or a ``.tar.gz``; see :class:`~hyperzoo.data.CIFAR10DataModule`).
        batch_size: images per batch.
        num_batches: how many batches.
        seed: seed of the order.
    """
    from hyperzoo.data.datamodules import CIFAR10DataModule

    dm = CIFAR10DataModule(root=root, batch_size=batch_size, augment=False, seed=seed)
    dm.prepare_data()
    dm.setup("fit")
    out = []
    for i, batch in enumerate(dm.train_dataloader()):
        if i >= num_batches:
            break
        out.append(dm.on_after_batch_transfer(batch, 0)[0])
    return out


def test_batches(root: str, limit: int | None = None, batch_size: int = 500) -> list[tuple[Tensor, Tensor]]:
    """The CIFAR-10 test split (first ``limit`` images of a fixed shuffle when given) as normalized batches.

    Args:
        root: the data (as for :func:`train_batches`).
        limit: keep this many test images (a fixed random subset); None keeps all.
        batch_size: images per batch.
    """
    from hyperzoo.data.datamodules import CIFAR10DataModule

    dm = CIFAR10DataModule(root=root, batch_size=batch_size, augment=False)
    dm.prepare_data()
    dm.setup("test")
    batches = [dm.on_after_batch_transfer(b, 0) for b in dm.test_dataloader()]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    if limit is not None and limit < len(y):
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:limit]
        x, y = x[keep], y[keep]
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size)]
