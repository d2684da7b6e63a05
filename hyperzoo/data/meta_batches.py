"""Training data of graph hypernetworks: every step pairs a batch of images with a meta-batch of architectures.

One sampler drives one DataLoader (one way in): :class:`MetaBatchSampler` yields ``(image indices, graph
indices)`` pairs; :class:`GraphImageDataset` turns a pair into ``(uint8 images, labels, [ArchGraph, ...])``; the
loader collates the graphs into one PyG ``Batch`` (:func:`collate_meta_batch`, in the worker processes); the
DataModule augments the images on the device and hands the graphs over on the CPU. An epoch is one pass over the
training images (the reference's convention); architectures are drawn from the graph store without replacement,
reshuffled whenever it is exhausted, and sharded by rank under DDP so each process predicts different networks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from hyperzoo.data.datamodules import ImageDataModule, check_data_args
from hyperzoo.data.h5_dataset import H5ImageDataset
from hyperzoo.data.resumable import ResumableDataLoader
from hyperzoo.data.sampler import ShardedBatchSampler
from hyperzoo.errors import DataError

__all__ = [
    "OVERFLOW_RULES",
    "GraphImageDataModule",
    "GraphImageDataset",
    "MetaBatchSampler",
    "collate_meta_batch",
    "meta_batches",
]

OVERFLOW_RULES = ("skip", "carry")


def _check_overflow(overflow: str) -> None:
    if overflow not in OVERFLOW_RULES:
        raise DataError(f"unknown node-budget rule overflow={overflow!r}; use 'skip' (the reference) or 'carry'")


def meta_batches(
    order: Sequence[int],
    num_nodes: np.ndarray,
    meta_batch: int,
    max_nodes: int | None,
    overflow: Literal["skip", "carry"] = "skip",
) -> list[list[int]]:
    """Groups graph indices, in order, into meta-batches of at most ``meta_batch`` graphs and ``max_nodes`` nodes.

    Args:
        order: graph indices in the order they are drawn.
        num_nodes: node count of every graph.
        meta_batch: graphs per meta-batch.
        max_nodes: node budget of one meta-batch (None: no budget).
        overflow: what happens to a meta-batch over the budget. ``"skip"`` (the reference GHN-2's
            ``NetBatchSampler``): the order is cut into consecutive groups of ``meta_batch`` graphs (the last one
            may be smaller) and a group over the budget is dropped whole, so large graphs are seen less often.
            ``"carry"`` (hyperzoo's former rule): a graph that would push the current meta-batch over the budget
            starts the next one, so no graph is dropped (graphs over the budget on their own are left out by
            the sampler) and meta-batches of large graphs have fewer than ``meta_batch`` graphs.
    """
    _check_overflow(overflow)
    if overflow == "skip":
        groups = [[int(i) for i in order[k : k + meta_batch]] for k in range(0, len(order), meta_batch)]
        return [g for g in groups if max_nodes is None or int(np.asarray(num_nodes)[g].sum()) <= max_nodes]
    out: list[list[int]] = []
    cur: list[int] = []
    nodes = 0
    for i in order:
        n = int(num_nodes[i])
        if cur and (len(cur) >= meta_batch or (max_nodes is not None and nodes + n > max_nodes)):
            out.append(cur)
            cur, nodes = [], 0
        cur.append(int(i))
        nodes += n
    if cur:
        out.append(cur)
    return out


class MetaBatchSampler(ShardedBatchSampler):
    """Yields ``(image index batch, graph index list)`` for every training step of an epoch.

    Image batches come from :class:`ShardedBatchSampler` (a per-epoch permutation sharded by rank); graph
    meta-batches from this rank's share of a permutation of the eligible graphs (those within ``max_nodes``),
    regrouped under the node budget and cycled with a fresh permutation when used up.

    Args:
        image_indices: training image indices.
        batch_size: images per step (per process).
        num_nodes: node count of every graph in the store.
        meta_batch: architectures per step (per process).
        max_nodes: node budget of one meta-batch (None: no budget).
        seed: base seed of both permutations.
        drop_last, num_replicas, rank: as for :class:`ShardedBatchSampler`.
        overflow: meta-batches over the budget are dropped (``"skip"``, the reference) or their last graph starts
            the next one (``"carry"``); see :func:`meta_batches`. With ``"carry"`` the graphs over the budget on
            their own are left out of the permutation; with ``"skip"`` they stay in it (as in the reference) and
            their meta-batches are dropped.
    """

    def __init__(
        self,
        image_indices: Sequence[int] | Tensor | int,
        batch_size: int,
        num_nodes: np.ndarray,
        meta_batch: int = 8,
        max_nodes: int | None = None,
        seed: int = 0,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        overflow: Literal["skip", "carry"] = "skip",
    ) -> None:
        super().__init__(image_indices, batch_size, True, seed, drop_last, num_replicas, rank)
        if meta_batch < 1:
            raise DataError(f"meta_batch must be at least 1, got {meta_batch}")
        _check_overflow(overflow)
        self.num_nodes = np.asarray(num_nodes)
        self.meta_batch, self.max_nodes, self.overflow = meta_batch, max_nodes, overflow
        eligible = np.arange(len(self.num_nodes))
        if max_nodes is not None and not bool((self.num_nodes <= max_nodes).any()):
            eligible = eligible[:0]
        elif max_nodes is not None and overflow == "carry":
            eligible = eligible[self.num_nodes <= max_nodes]
        if len(eligible) == 0:
            raise DataError(
                f"no graph fits the node budget max_nodes={max_nodes} (smallest has {int(self.num_nodes.min())} "
                "nodes); raise max_nodes"
            )
        self.eligible = torch.as_tensor(eligible)

    def _graph_batches(self) -> Iterator[list[int]]:
        cycle, empty = 0, 0
        while True:
            graphs = ShardedBatchSampler(
                self.eligible, 1, True, self.seed + 7919 * (self.epoch + 1) + cycle, False, self.num_replicas, self.rank
            )
            batches = meta_batches(
                graphs.local_indices().tolist(), self.num_nodes, self.meta_batch, self.max_nodes, self.overflow
            )
            yield from batches
            cycle += 1
            empty = 0 if batches else empty + 1
            if empty >= 100:
                raise DataError(
                    f"100 passes over the graphs gave no meta-batch of {self.meta_batch} graphs within max_nodes="
                    f"{self.max_nodes}; raise max_nodes, lower meta_batch or use overflow='carry'"
                )

    def _epoch_batches(self) -> Iterator[tuple[Tensor, list[int]]]:
        return zip(super()._epoch_batches(), self._graph_batches())


class GraphImageDataset(Dataset):
    """Reads one step: ``(image indices, graph indices) -> (uint8 images, labels, [ArchGraph, ...])``."""

    def __init__(self, images: H5ImageDataset, graphs: Any) -> None:
        self.images, self.graphs = images, graphs

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[Tensor, list[int]]) -> tuple[Tensor, Tensor, list[Any]]:
        image_idx, graph_idx = item
        x, y = self.images[image_idx]
        return x, y, [self.graphs[i] for i in graph_idx]


class GraphImageDataModule(ImageDataModule):
    """Images (any :class:`ImageDataModule` source) plus a graph store of training architectures.

    Training batches are ``(images, labels, graphs)`` with the graphs as one PyG ``Batch``
    (:func:`~hyperzoo.graphs.arch_graph.batch_graphs`; ``graphs.to_data_list()`` gives them back); validation and
    test batches are plain ``(images, labels)`` and the architectures to evaluate are :attr:`val_graphs` (the first
    ``num_val_archs`` of ``val_graphs``'s store), which the GHN module predicts once per validation run.

    Args:
        train_graphs: the training graph store (``hyperzoo graphs generate --split train ...``).
        val_graphs: a held-out store for validation (``graphs/val.h5``); None validates on no architectures.
        meta_batch: architectures per step and process (the reference's ``m``: 8 for GHN-2, 1 for GHN-1).
        max_nodes: node budget of a meta-batch (the reference: 2,200 nodes).
        overflow: ``"skip"`` (the reference: a meta-batch over the budget is dropped) or ``"carry"`` (the graph that
            would overflow starts the next meta-batch); see :func:`meta_batches`.
        num_val_archs: architectures of ``val_graphs`` evaluated during validation.
        dataset, root, batch_size, ...: the image data, as :class:`ImageDataModule` (batch 64 for CIFAR-10 as
            the reference; validation uses ``eval_batch_size`` images with batch-norm in batch-statistics mode).
    """

    def __init__(
        self,
        train_graphs: str,
        val_graphs: str | None = None,
        meta_batch: int = 8,
        max_nodes: int | None = 2200,
        overflow: Literal["skip", "carry"] = "skip",
        num_val_archs: int = 8,
        root: str | None = None,
        dataset: str = "cifar10",
        batch_size: int = 64,
        eval_batch_size: int | None = 64,
        **kwargs: Any,
    ) -> None:
        check_data_args(meta_batch=meta_batch, max_nodes=max_nodes, num_val_archs=num_val_archs)
        super().__init__(root=root, dataset=dataset, batch_size=batch_size, eval_batch_size=eval_batch_size, **kwargs)
        self.train_graphs_path, self.val_graphs_path = train_graphs, val_graphs
        _check_overflow(overflow)
        self.meta_batch, self.max_nodes, self.num_val_archs = meta_batch, max_nodes, num_val_archs
        self.overflow = overflow
        self._train_store: Any = None
        self._val_graphs: list[Any] | None = None

    @property
    def train_store(self) -> Any:
        """The training :class:`~hyperzoo.graphs.store.GraphStore` (opened lazily)."""
        if self._train_store is None:
            from hyperzoo.graphs.store import GraphStore

            self._train_store = GraphStore(self.train_graphs_path)
        return self._train_store

    @property
    def val_graphs(self) -> list[Any]:
        """The validation architectures (graphs with ``net_args``)."""
        if self._val_graphs is None:
            if self.val_graphs_path is None:
                self._val_graphs = []
            else:
                from hyperzoo.graphs.store import GraphStore

                store = GraphStore(self.val_graphs_path)
                self._val_graphs = [store[i] for i in range(min(self.num_val_archs, len(store)))]
        return self._val_graphs

    def prepare_data(self) -> None:
        super().prepare_data()
        _ = self.train_store  # fail early on a missing or corrupt store

    def train_dataloader(self) -> DataLoader:  # type: ignore[override]
        self.setup()
        assert self.train_set is not None and self.train_indices is not None
        sampler = MetaBatchSampler(
            self.train_indices,
            self.batch_size,
            self.train_store.num_nodes(),
            self.meta_batch,
            self.max_nodes,
            seed=self.seed,
            drop_last=True,
            overflow=self.overflow,
        )
        return ResumableDataLoader(
            GraphImageDataset(self.train_set, self.train_store),
            sampler=sampler,
            batch_size=None,
            collate_fn=collate_meta_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if len(batch) == 3:
            images, labels, graphs = batch
            return (*super().on_after_batch_transfer((images, labels), dataloader_idx), graphs)
        return super().on_after_batch_transfer(batch, dataloader_idx)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if len(batch) == 3:  # graphs stay on the CPU: the GHN moves the node and edge tensors it embeds
            images, labels, graphs = batch
            return images.to(device, non_blocking=True), labels.to(device, non_blocking=True), graphs
        return super().transfer_batch_to_device(batch, device, dataloader_idx)


def collate_meta_batch(step: tuple[Tensor, Tensor, list[Any]]) -> tuple[Tensor, Tensor, Any]:
    """One step of :class:`GraphImageDataset` with its graphs as one PyG ``Batch``.

    Node and edge tensors are concatenated and edge ids offset (:func:`~hyperzoo.graphs.arch_graph.batch_graphs`).
    The sampler already groups images and graphs into one item per step, so there is nothing else to collate.
    """
    from hyperzoo.graphs.arch_graph import batch_graphs

    images, labels, graphs = step
    return images, labels, batch_graphs(graphs)
