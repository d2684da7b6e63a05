"""LightningDataModules for image classification data served from the HDF5 uint8 cache.

Batches leave the DataLoader as uint8 ``[b, h, w, c]`` (a quarter of the bytes of float32 to copy to the
GPU) and are augmented and normalized after the transfer by :class:`~hyperzoo.data.augment.BatchAugment`
in ``on_after_batch_transfer``, so a LightningModule always receives normalized float32 ``[b, c, h, w]``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from lightning.pytorch import LightningDataModule
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

from hyperzoo.data.augment import BatchAugment
from hyperzoo.data.cache import build_h5_cache
from hyperzoo.data.h5_dataset import H5ImageDataset
from hyperzoo.data.resumable import ResumableDataLoader
from hyperzoo.data.sampler import ShardedBatchSampler
from hyperzoo.data.sources import IMAGE_EXTENSIONS, ImageSource, list_classes, resolve_image_source
from hyperzoo.errors import ConfigError, DataError

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageNetDataModule",
]

# Channel statistics of the [0, 1]-scaled training pixels.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_KNOWN = {
    "cifar10": (10, 32, CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (100, 32, CIFAR100_MEAN, CIFAR100_STD),
}
DATASETS = ("folder", "imagenet", "cifar10", "cifar100")
# lowest allowed value of the numeric data arguments (None is allowed where the argument's default is None)
_MINIMUM = {
    "batch_size": 1, "eval_batch_size": 1, "num_workers": 0, "val_size": 0, "limit": 1, "image_size": 1,
    "num_classes": 1, "padding": 0, "meta_batch": 1, "max_nodes": 1, "num_val_archs": 0,
}  # fmt: skip


def check_data_args(**values: Any) -> None:
    """Checks numeric data-module arguments at the boundary, naming the bad one as a call would (``batch_size=0``).

    ``hyperzoo fit`` says the option instead (``--data.init_args.batch_size 0``; :mod:`hyperzoo.lightning.cli`).

    Raises:
        ConfigError: an argument below its minimum (batch size 0, negative workers, ...) or not an integer.
    """
    for name, value in values.items():
        if value is None:
            continue
        low = _MINIMUM[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r}: must be an integer >= {low}")


class ImageDataModule(LightningDataModule):
    """Image classification data from any supported source, cached once as HDF5 uint8, augmented per batch.

    ``prepare_data`` resolves the root (downloading CIFAR or extracting an archive if needed) and builds the
    caches; ``setup`` opens them. Training batches get a random crop with zero padding and a horizontal flip;
    all batches are normalized; both happen on the device after transfer.

    Args:
        root: the data: ``"sample"`` for the embedded CIFAR-10 sample (100 train / 100 test images per class),
            an ImageFolder tree (``train/<class>/*.jpg`` and ``test/`` or ``val/``), a ``.tar.gz`` of one such
            as ``../shared/data/cifar10-jpeg.tar.gz`` (extracted once into ``cache_dir``), or for CIFAR a
            folder with torchvision's ``cifar-10-batches-py``/``cifar-100-python``.
        dataset: ``"folder"``, ``"imagenet"``, ``"cifar10"`` or ``"cifar100"``; sets the defaults below.
        batch_size: training batch size (per process under DDP).
        eval_batch_size: validation/test batch size; None means ``batch_size``.
        num_workers: DataLoader worker processes; 0 is usually fastest for in-memory caches.
        cache_dir: where caches and extracted archives go; None means ``$HYPERZOO_CACHE`` or
            ``~/.cache/hyperzoo``.
        download: CIFAR only: download with torchvision when ``root`` holds no copy (needs internet).
        augment: random crop and flip for training batches; False only normalizes.
        val_size: 0 validates on the test split (``val/`` for ImageNet-style trees); N > 0 holds out N
            training images (fixed by ``seed``) for validation instead.
        limit: use only this many training images (a fixed random subset); None uses all.
        seed: seed of the held-out split, the subset and the per-epoch shuffles.
        image_size: side of the cached images; None keeps the stored size (CIFAR: 32); ImageNet-style trees
            are resized (shorter side) and center-cropped to it when cached.
        num_classes: number of classes; None takes it from the dataset or the class folders.
        mean: per-channel normalization mean; None takes the dataset's (ImageNet's for folders).
        std: per-channel normalization std; None takes the dataset's (ImageNet's for folders).
        padding: zero padding of the random crop.
        flip: random horizontal flips for training batches.
        in_memory: hold the cache in RAM; None decides by size (up to 4 GiB).
        pin_memory: pin batches for faster host-to-GPU copies.
        drop_last: drop the last incomplete training batch of each epoch.
        bad_images: image files that cannot be decoded when the cache is built: ``"fail"`` (an error naming the
            file) or ``"skip"`` (left out, with a warning giving their count and the first paths).
    """

    def __init__(
        self,
        root: str | None = None,
        dataset: str = "folder",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str | None = None,
        download: bool = False,
        augment: bool = True,
        val_size: int = 0,
        limit: int | None = None,
        seed: int = 0,
        image_size: int | None = None,
        num_classes: int | None = None,
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        padding: int = 4,
        flip: bool = True,
        in_memory: bool | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        bad_images: Literal["fail", "skip"] = "fail",
    ):
        super().__init__()
        if dataset not in DATASETS:
            raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
        check_data_args(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            val_size=val_size,
            limit=limit,
            image_size=image_size,
            num_classes=num_classes,
            padding=padding,
        )
        for name, stats in (("std", std), ("mean", mean)):
            if stats is not None and (
                len(stats) != 3 or not all(math.isfinite(v) for v in stats) or (name == "std" and min(stats) <= 0)
            ):
                raise ConfigError(f"{name}={list(stats)}: must be 3 finite numbers{' > 0' if name == 'std' else ''}")
        self.save_hyperparameters(ignore=["num_classes"])  # the model logs the resolved value
        self.root, self.dataset = root, dataset
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.cache_dir, self.download = num_workers, cache_dir, download
        self.augment, self.val_size, self.limit, self.seed = augment, val_size, limit, seed
        self.in_memory, self.pin_memory, self.drop_last = in_memory, pin_memory, drop_last
        self.bad_images = bad_images
        known = _KNOWN.get(dataset)
        default_mean, default_std = (known[2], known[3]) if known else (IMAGENET_MEAN, IMAGENET_STD)
        self.mean = tuple(mean) if mean is not None else default_mean
        self.std = tuple(std) if std is not None else default_std
        self._num_classes = num_classes if num_classes is not None else (known[0] if known else None)
        self._image_size = image_size
        self._stored_size = known[1] if known else None
        self.batch_augment = BatchAugment(self.mean, self.std, padding=padding, flip=flip)
        self.classes: list[str] = []
        self._source: ImageSource | None = None
        self.train_set: H5ImageDataset | None = None
        self.eval_sets: dict[str, H5ImageDataset] = {}
        self.train_indices: Tensor | None = None
        self.val_indices: Tensor | None = None
        # crop offsets and flips come from a generator of their own, saved in checkpoints (state_dict), so a
        # resumed run augments the remaining batches exactly as the interrupted run would have
        self._augment_rng: torch.Generator | None = None

    # -- what the model needs to know before setup --

    @property
    def source(self) -> ImageSource:
        """The resolved source (resolving downloads CIFAR or extracts an archive the first time)."""
        if self._source is None:
            self._source = resolve_image_source(self.root, self.dataset, self.cache_dir, self.download)
        return self._source

    @property
    def num_classes(self) -> int:
        """Number of classes (for folders: the class folders under ``train/``)."""
        if self._num_classes is None:
            self._num_classes = len(self.classes) or len(list_classes(self.source.root / "train"))
        return self._num_classes

    @property
    def image_size(self) -> int:
        """Side of the images the model receives."""
        if self._image_size is not None:
            return self._image_size
        if self._stored_size is None:
            # Folders without image_size keep their stored size: peek at the first training image.
            train = self.source.root / "train"
            first = next(
                p for c in list_classes(train) for p in sorted((train / c).iterdir())
                if p.name.lower().endswith(IMAGE_EXTENSIONS)
            )  # fmt: skip
            with Image.open(first) as img:
                self._stored_size = min(img.size)
        return self._stored_size

    # -- Lightning hooks --

    def _splits(self) -> list[str]:
        source = self.source
        if source.kind != "folder":
            return ["train", "test"]
        return [s for s in ("train", "val", "test") if s in source.splits]

    def _cache(self, split: str) -> H5ImageDataset:
        name = self.dataset if self.root != "sample" else f"{self.dataset}-sample"
        path = build_h5_cache(self.source, split, name, self.cache_dir, self._image_size, bad_images=self.bad_images)
        return H5ImageDataset(path, in_memory=self.in_memory)

    def prepare_data(self) -> None:
        """Resolves the source (download or extraction) and builds the caches; runs once per node."""
        for split in self._splits():
            self.classes = self._cache(split).classes

    def setup(self, stage: str | None = None) -> None:
        """Opens the caches and fixes the training, held-out and evaluation indices."""
        if self.train_set is not None:
            return
        splits = self._splits()
        self.train_set = self._cache("train")
        self.eval_sets = {s: self._cache(s) for s in splits if s != "train"}
        self.classes = self.train_set.classes
        if self._num_classes is not None and self._num_classes != len(self.classes):
            raise DataError(
                f"{self.source.description} has {len(self.classes)} classes, not "
                f"num_classes={self._num_classes}; "
                "fix num_classes or the root"
            )
        self._num_classes = len(self.classes)
        n = len(self.train_set)
        if self.val_size >= n:
            raise DataError(f"val_size={self.val_size} leaves no training images out of {n}; use fewer")
        if self.val_size or self.limit:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
            self.val_indices = perm[: self.val_size].sort().values
            self.train_indices = perm[self.val_size :][: self.limit].sort().values
        else:
            self.train_indices = torch.arange(n)

    def _loader(self, dataset: H5ImageDataset, sampler: ShardedBatchSampler, train: bool = False) -> DataLoader:
        cls = ResumableDataLoader if train else DataLoader
        return cls(
            dataset,
            sampler=sampler,
            batch_size=None,  # the sampler yields whole index batches; the dataset reads each in one go
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            # worker seeds come from this generator, not the global one, which iterating must leave untouched
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _eval_set(self, prefer: tuple[str, ...]) -> H5ImageDataset:
        self.setup()
        for split in prefer:
            if split in self.eval_sets:
                return self.eval_sets[split]
        raise DataError(f"{self.source.description} has no {' or '.join(prefer)} split")

    def train_dataloader(self) -> DataLoader:
        self.setup()
        assert self.train_set is not None and self.train_indices is not None
        sampler = ShardedBatchSampler(
            self.train_indices, self.batch_size, shuffle=True, seed=self.seed, drop_last=self.drop_last
        )
        return self._loader(self.train_set, sampler, train=True)

    def _eval_order(self, indices: Tensor) -> Tensor:
        """``indices`` in one fixed random order (``seed``), the same every epoch and on every rank.

        Caches store images class by class, so batches in file order would each hold a single class: harmless
        for accuracy with running statistics, meaningless for networks that normalize with batch statistics at
        evaluation (GHN-predicted and one-shot networks), and a ``limit_val_batches`` subset would miss classes.
        """
        perm = torch.randperm(len(indices), generator=torch.Generator().manual_seed(self.seed))
        return indices[perm]

    def val_dataloader(self) -> DataLoader:
        """Evaluation batches in one fixed mixed order (:meth:`_eval_order`)."""
        self.setup()
        if self.val_size:
            assert self.train_set is not None and self.val_indices is not None
            sampler = ShardedBatchSampler(self._eval_order(self.val_indices), self.eval_batch_size, shuffle=False)
            return self._loader(self.train_set, sampler)
        dataset = self._eval_set(("val", "test"))
        order = self._eval_order(torch.arange(len(dataset)))
        return self._loader(dataset, ShardedBatchSampler(order, self.eval_batch_size, shuffle=False))

    def test_dataloader(self) -> DataLoader:
        """Test batches in one fixed mixed order (:meth:`_eval_order`)."""
        dataset = self._eval_set(("test", "val"))
        order = self._eval_order(torch.arange(len(dataset)))
        return self._loader(dataset, ShardedBatchSampler(order, self.eval_batch_size, shuffle=False))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turns uint8 ``[b, h, w, c]`` into normalized float32 ``[b, c, h, w]``; augments in training."""
        images, labels = batch
        if images.dtype != torch.uint8:
            return batch
        trainer = getattr(self, "trainer", None)
        train = self.augment and trainer is not None and bool(trainer.training)
        return self.batch_augment(images, train=train, generator=self.augment_rng if train else None), labels

    @property
    def augment_rng(self) -> torch.Generator:
        """The CPU generator of the training augmentation.

        Seeded by the global seed (``seed_everything``, read with ``torch.initial_seed()``, so runs with different
        global seeds augment differently, as before), ``seed`` and the process rank; it draws nothing from the global
        generator.
        """
        if self._augment_rng is None:
            trainer = getattr(self, "trainer", None)
            rank = int(getattr(trainer, "global_rank", 0) or 0)
            seed = (torch.initial_seed() * 1_000_003 + self.seed * 7919 + rank + 1) % (1 << 63)
            self._augment_rng = torch.Generator().manual_seed(seed)
        return self._augment_rng

    def state_dict(self) -> dict[str, Any]:
        """The augmentation generator's state (Lightning stores it in checkpoints)."""
        return {"augment_rng": self.augment_rng.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the augmentation generator of a checkpoint."""
        if "augment_rng" in state_dict:
            self.augment_rng.set_state(state_dict["augment_rng"])

    def teardown(self, stage: str | None = None) -> None:
        for ds in [self.train_set, *self.eval_sets.values()]:
            if ds is not None:
                ds.close()


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 (10 classes, 32x32), from torchvision's release, an ImageFolder tree/archive, or ``"sample"``.

    Args:
        root: ``"sample"``, a folder with ``cifar-10-batches-py``, an ImageFolder tree, or a ``.tar.gz`` of
            one such as ``../shared/data/cifar10-jpeg.tar.gz``; None with ``download=True`` downloads into
            ``cache_dir``.
        batch_size: training batch size.
        **kwargs: any other argument of :class:`ImageDataModule`.
    """

    def __init__(self, root: str | None = None, batch_size: int = 128, **kwargs: Any):
        super().__init__(root=root, dataset="cifar10", batch_size=batch_size, **kwargs)


class CIFAR100DataModule(ImageDataModule):
    """CIFAR-100 (100 classes, 32x32), from torchvision's release or an ImageFolder tree/archive.

    Args:
        root: a folder with ``cifar-100-python``, an ImageFolder tree, or a ``.tar.gz`` of one; None with
            ``download=True`` downloads into ``cache_dir``.
        batch_size: training batch size.
        **kwargs: any other argument of :class:`ImageDataModule`.
    """

    def __init__(self, root: str | None = None, batch_size: int = 128, **kwargs: Any):
        super().__init__(root=root, dataset="cifar100", batch_size=batch_size, **kwargs)


class ImageFolderDataModule(ImageDataModule):
    """Any ImageFolder tree (``train/<class>/*`` and ``test/`` or ``val/``) or ``.tar.gz`` of one.

    Args:
        root: the tree, an archive of it, or ``"sample"``.
        image_size: resize (shorter side) and center-crop to this when caching; None keeps the stored size,
            which must then be the same for all images.
        batch_size: training batch size.
        **kwargs: any other argument of :class:`ImageDataModule`.
    """

    def __init__(self, root: str | None = None, image_size: int | None = None, batch_size: int = 128, **kwargs: Any):
        super().__init__(root=root, dataset="folder", image_size=image_size, batch_size=batch_size, **kwargs)


class ImageNetDataModule(ImageDataModule):
    """ImageNet-style folders: ``train/<class>/*.JPEG`` and ``val/<class>/*.JPEG`` (``test/`` optional).

    Images are cached once at ``image_size`` (shorter side resized, center crop), then trained with padded
    random crops and flips on the device; normalization uses the ImageNet statistics.

    Args:
        root: the folder holding ``train/`` and ``val/``, or a ``.tar.gz`` of it.
        image_size: side of the cached images.
        padding: zero padding of the random crop (1/8 of the side, as 4 is for CIFAR's 32).
        batch_size: training batch size.
        **kwargs: any other argument of :class:`ImageDataModule`.
    """

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 224,
        padding: int = 28,
        batch_size: int = 128,
        **kwargs: Any,
    ):
        super().__init__(
            root=root,
            dataset="imagenet",
            image_size=image_size,
            padding=padding,
            batch_size=batch_size,
            **kwargs,
        )
