"""Meta-batches of architectures paired with image batches (the GHN training sampler)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperzoo.data.meta_batches import MetaBatchSampler, meta_batches
from hyperzoo.errors import DataError


def test_meta_batches_respect_size_and_node_budget():
    nodes = np.array([100, 300, 50, 400, 200, 100, 100, 600])
    groups = meta_batches(range(8), nodes, meta_batch=3, max_nodes=700, overflow="carry")
    assert [i for g in groups for i in g] == list(range(8))  # nothing lost, order kept
    assert all(len(g) <= 3 and nodes[g].sum() <= 700 for g in groups)
    assert meta_batches(range(4), nodes, meta_batch=8, max_nodes=None) == [[0, 1, 2, 3]]


def test_meta_batches_over_the_budget_are_skipped_by_default():
    """The reference's rule: consecutive groups of meta_batch graphs, a group over the budget dropped whole."""
    nodes = np.array([100, 300, 50, 400, 200, 100, 100, 600])
    # groups [0 1 2] = 450, [3 4 5] = 700, [6 7] = 700 (the last group is smaller): all within 700
    assert meta_batches(range(8), nodes, meta_batch=3, max_nodes=700) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    # with 650, [3 4 5] and [6 7] are over: dropped, not regrouped
    assert meta_batches(range(8), nodes, meta_batch=3, max_nodes=650) == [[0, 1, 2]]
    assert meta_batches([7, 0, 1], nodes, meta_batch=2, max_nodes=650) == [[1]]
    with pytest.raises(DataError, match="overflow"):
        meta_batches(range(8), nodes, meta_batch=3, max_nodes=650, overflow="drop")


def test_sampler_skips_or_carries_over_the_budget():
    nodes = np.array([1000] * 4 + [100] * 4)
    skip = [g for _, g in MetaBatchSampler(160, 8, nodes, meta_batch=4, max_nodes=2200, num_replicas=1, rank=0)]
    assert all(len(g) == 4 and nodes[g].sum() <= 2200 for g in skip)  # full meta-batches only: 3+ big ones dropped
    carry = MetaBatchSampler(160, 8, nodes, meta_batch=4, max_nodes=2200, num_replicas=1, rank=0, overflow="carry")
    carried = [g for _, g in carry]
    assert all(nodes[g].sum() <= 2200 for g in carried) and any(len(g) < 4 for g in carried)
    with pytest.raises(DataError, match="no meta-batch"):
        next(iter(MetaBatchSampler(16, 8, np.array([1500, 1500]), meta_batch=2, max_nodes=2200)))


def test_sampler_pairs_every_image_batch_with_a_meta_batch():
    nodes = np.full(10, 50)
    sampler = MetaBatchSampler(100, batch_size=16, num_nodes=nodes, meta_batch=4, num_replicas=1, rank=0)
    steps = list(sampler)
    assert len(steps) == len(sampler) == 100 // 16  # drop_last: full image batches only
    assert all(len(images) == 16 and 1 <= len(graphs) <= 4 for images, graphs in steps)
    seen = [i for _, graphs in steps for i in graphs]
    assert set(seen) == set(range(10))  # the store is cycled, every graph used
    sampler.set_epoch(1)
    assert [g for _, g in sampler] != [g for _, g in steps]  # a new permutation each epoch


def test_ranks_get_different_architectures_and_big_graphs_are_left_out():
    nodes = np.array([50] * 8 + [5000])
    a = list(MetaBatchSampler(64, 8, nodes, meta_batch=2, max_nodes=2200, num_replicas=2, rank=0))
    b = list(MetaBatchSampler(64, 8, nodes, meta_batch=2, max_nodes=2200, num_replicas=2, rank=1))
    assert len(a) == len(b)
    for (ia, ga), (ib, gb) in zip(a, b):
        assert not set(ga) & set(gb) and not set(ia.tolist()) & set(ib.tolist())
    assert 8 not in {i for _, g in a + b for i in g}


def test_no_graph_within_budget_is_an_error():
    with pytest.raises(DataError, match="max_nodes"):
        MetaBatchSampler(torch.arange(10), 2, np.array([500, 600]), max_nodes=100)


def test_collate_gives_the_meta_batch_as_one_pyg_batch():
    from torch_geometric.data import Batch

    from hyperzoo.data.meta_batches import collate_meta_batch
    from hyperzoo.graphs import ArchGraph

    def chain(n: int) -> ArchGraph:
        return ArchGraph.from_dag(["input"] + ["conv"] * (n - 1), [""] + [f"c{i}.weight" for i in range(1, n)],
                                  [None] + [(4, 4, 3, 3)] * (n - 1), [(i, i + 1) for i in range(n - 1)])  # fmt: skip

    images, labels = torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1])
    x, y, graphs = collate_meta_batch((images, labels, [chain(3), chain(5)]))
    assert x is images and y is labels
    assert isinstance(graphs, Batch) and graphs.num_graphs == 2 and graphs.ptr.tolist() == [0, 3, 8]
    assert graphs.param_names[1][4] == "c4.weight" and int(graphs.edge_index.min()) == 0
