"""CIFAR-10 restricted to a subset of its labels, renumbered ``0..k-1`` (the zoo's half-label models)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from hyperzoo.data.datamodules import CIFAR10DataModule
from hyperzoo.data.sampler import ShardedBatchSampler
from hyperzoo.errors import ConfigError

__all__ = ["ClassSubsetCIFAR10DataModule"]


class ClassSubsetCIFAR10DataModule(CIFAR10DataModule):
    """CIFAR-10 restricted to a label subset, labels renumbered ``0..k-1`` in the order given.

    The training subset (``limit``) is drawn from all ten classes first, then the label subset is taken; test
    batches come in file order restricted to the subset. With ``classes`` None this is CIFAR-10 with test batches
    in file order.

    Args:
        classes: the CIFAR-10 labels to keep (None keeps all ten).
        **kwargs: :class:`~hyperzoo.data.CIFAR10DataModule` arguments (``root``, ``batch_size``, ``limit``, ...).

    Raises:
        ConfigError: ``classes`` that are not distinct labels 0..9.
    """

    def __init__(self, classes: list[int] | None = None, **kwargs: Any) -> None:
        if classes is not None and (
            not classes or any(not 0 <= int(c) < 10 for c in classes) or len(set(classes)) != len(classes)
        ):
            raise ConfigError(f"classes={classes}: must be distinct CIFAR-10 labels 0..9")
        super().__init__(**kwargs)
        self.keep = [int(c) for c in classes] if classes is not None else None
        self._map: Tensor | None = None
        self._test_idx: Tensor | None = None

    @property
    def num_classes(self) -> int:
        """Number of kept classes (the model's outputs)."""
        return len(self.keep) if self.keep is not None else 10

    def setup(self, stage: str | None = None) -> None:
        """Opens the caches; keeps the training and test images of the kept classes."""
        self._num_classes = 10  # the parent checks the raw label count
        fresh = self.train_set is None
        super().setup(stage)
        if not fresh or self.keep is None:
            return
        self._map = torch.full((10,), -1, dtype=torch.long)
        self._map[torch.tensor(self.keep)] = torch.arange(len(self.keep))
        assert self.train_set is not None and self.train_indices is not None
        labels = self.train_set.labels
        self.train_indices = self.train_indices[self._map[labels[self.train_indices]] >= 0]
        test = self._eval_set(("test", "val"))
        self._test_idx = torch.nonzero(self._map[test.labels] >= 0).flatten()

    def _eval(self) -> DataLoader:
        if self._test_idx is None:
            return super().test_dataloader()
        dataset = self._eval_set(("test", "val"))
        return self._loader(dataset, ShardedBatchSampler(self._test_idx, self.eval_batch_size, shuffle=False))

    def val_dataloader(self) -> DataLoader:
        """The test images of the kept classes."""
        self.setup()
        return self._eval()

    def test_dataloader(self) -> DataLoader:
        """The test images of the kept classes."""
        self.setup()
        return self._eval()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalizes (and in training augments) as the parent does, then renumbers the labels."""
        x, y = super().on_after_batch_transfer(batch, dataloader_idx)
        if self._map is not None:
            y = self._map.to(y.device)[y]
        return x, y
