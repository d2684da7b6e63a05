"""Image data: CIFAR-10/100, ImageFolder trees and archives, ImageNet-style folders; HDF5 uint8 cache.

Owns: image sources and their HDF5 cache, the image DataModules, resumable and sharded samplers, and the graph-image
meta-batches of GHN training.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``), ``hyperzoo.nets``, ``hyperzoo.graphs``.
"""

from hyperzoo.data.augment import BatchAugment, crop_flip
from hyperzoo.data.cache import build_h5_cache, cache_path, decode_image, inspect_h5_cache
from hyperzoo.data.class_subset import ClassSubsetCIFAR10DataModule
from hyperzoo.data.datamodules import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    ImageDataModule,
    ImageFolderDataModule,
    ImageNetDataModule,
)
from hyperzoo.data.fixed_batches import test_batches, train_batches
from hyperzoo.data.h5_dataset import H5ImageDataset
from hyperzoo.data.meta_batches import GraphImageDataModule, GraphImageDataset, MetaBatchSampler
from hyperzoo.data.sampler import ShardedBatchSampler
from hyperzoo.data.sources import (
    ImageSource,
    default_cache_dir,
    embedded_sample_root,
    extract_archive,
    resolve_image_source,
)

__all__ = [
    "BatchAugment",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "ClassSubsetCIFAR10DataModule",
    "GraphImageDataModule",
    "GraphImageDataset",
    "H5ImageDataset",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageNetDataModule",
    "ImageSource",
    "MetaBatchSampler",
    "ShardedBatchSampler",
    "build_h5_cache",
    "cache_path",
    "crop_flip",
    "decode_image",
    "default_cache_dir",
    "embedded_sample_root",
    "extract_archive",
    "inspect_h5_cache",
    "resolve_image_source",
    "test_batches",
    "train_batches",
]
