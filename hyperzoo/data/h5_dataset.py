"""Reading batches of uint8 images from an HDF5 cache (see :mod:`hyperzoo.data.cache`).

Indexing with one integer gives one ``(image, label)``; indexing with a sequence of indices gives a whole
batch ``(images [b, h, w, c] uint8, labels [b] int64)`` in one read, which is how the DataModules use it
(a batch sampler and ``DataLoader(batch_size=None)``). Small caches are loaded into memory once per process;
large ones are read with sorted index lists from a handle opened lazily in each process (an open h5py handle
can be neither pickled nor shared across fork).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from hyperzoo.data.cache import inspect_h5_cache

__all__ = ["MAX_IN_MEMORY_BYTES", "H5ImageDataset"]

# Caches up to this size are held in RAM (CIFAR-10 train: 150 MB); larger ones are read from disk per batch.
MAX_IN_MEMORY_BYTES = 4 << 30


class H5ImageDataset(Dataset):
    """A uint8 image cache as a dataset of single images or whole batches.

    Args:
        path: an HDF5 cache written by :func:`~hyperzoo.data.cache.build_h5_cache`.
        in_memory: hold all images in RAM; None decides by size (up to 4 GiB).

    Raises:
        DataError: the file is missing, truncated or of another format.

    Shapes:
        - ``ds[i]``: uint8 ``[h, w, c]`` and an int64 scalar.
        - ``ds[[i, j, ...]]``: uint8 ``[b, h, w, c]`` and int64 ``[b]``.
    """

    def __init__(self, path: str | os.PathLike, in_memory: bool | None = None):
        self.path = Path(path)
        meta = inspect_h5_cache(self.path)  # opened and closed again: no handle survives __init__
        self.classes: list[str] = meta["classes"]
        self.image_shape: tuple[int, int, int] = meta["shape"]
        self.num_images: int = meta["num_images"]
        nbytes = self.num_images * int(np.prod(self.image_shape))
        self.in_memory = nbytes <= MAX_IN_MEMORY_BYTES if in_memory is None else in_memory
        self._reset()

    def _reset(self) -> None:
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._images: Tensor | None = None
        self._labels: Tensor | None = None

    def __getstate__(self) -> dict:
        # Pickled for spawn-started workers and ddp_spawn: ship the path, not the handle or the pixels.
        state = self.__dict__.copy()
        state.update(_file=None, _pid=None, _images=None, _labels=None)
        return state

    def __len__(self) -> int:
        return self.num_images

    @property
    def labels(self) -> Tensor:
        """All labels, int64 ``[n]``."""
        self._open()
        assert self._labels is not None
        return self._labels

    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            # A handle inherited through fork is not safe to use: reopen in this process.
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
            self._labels = torch.from_numpy(self._file["labels"][...])
            if self.in_memory:
                self._images = torch.from_numpy(self._file["images"][...])
        return self._file

    def load(self) -> H5ImageDataset:
        """Opens the file (and loads the pixels when in memory) now rather than on the first batch."""
        self._open()
        return self

    def __getitem__(self, index: int | Sequence[int] | Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
        f = self._open()
        assert self._labels is not None
        if isinstance(index, (int, np.integer)) or (isinstance(index, Tensor) and index.dim() == 0):
            i = int(index)
            image = self._images[i] if self._images is not None else torch.from_numpy(f["images"][i])
            return image, self._labels[i]
        idx = torch.as_tensor(index, dtype=torch.int64)
        if self._images is not None:
            # index_select copies whole rows; plain advanced indexing is ~10x slower here on CPU.
            return self._images.index_select(0, idx), self._labels[idx]
        # h5py reads fancy selections only in increasing order without repeats.
        unique, inverse = np.unique(idx.numpy(), return_inverse=True)
        images = torch.from_numpy(f["images"][unique])[torch.from_numpy(inverse)]
        return images, self._labels[idx]

    def close(self) -> None:
        """Closes the file handle and drops loaded pixels."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._reset()

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        mode = "in memory" if self.in_memory else "from disk"
        return f"{type(self).__name__}({self.path.name}, {self.num_images} x {h}x{w}x{c}, {mode})"
